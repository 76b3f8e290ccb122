"""``otel-distro collector check``: the config checker from the command line."""

from __future__ import annotations

import subprocess

from tests.conftest import BIN, ROOT


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-distro"), "collector", "check", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_shipped_collector_config_is_clean() -> None:
    done = _check(ROOT / "collector" / "otelcol-config.yaml")
    assert done.returncode == 0, done.stdout
    assert "0 error(s)" in done.stdout


def test_broken_collector_config_is_reported(tmp_path) -> None:
    broken = tmp_path / "otelcol.yaml"
    broken.write_text(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 0.0.0.0:4318\n"
        "exporters:\n  debug: {}\n"
        "service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n"
        "      processors: [batch]\n      exporters: [debug]\n")
    done = _check(broken)
    assert done.returncode == 1
    assert "batch" in done.stdout  # used in a pipeline, never defined
    assert "0.0.0.0" in done.stdout
