"""`otel-distro stack build` and `stack up` before anything is built: they say what is missing and why."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import BIN


def _run(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run([str(BIN / "otel-distro"), *args], capture_output=True, text=True, timeout=60, env=env)


def test_build_without_go_names_what_is_missing(tmp_path: Path) -> None:
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    cache = tmp_path / "cache"
    done = _run("stack", "build", "--cache-dir", str(cache), path=str(no_tools))
    assert done.returncode == 2, done.stderr
    assert "Go is not installed" in done.stderr
    for program in ("Collector otelcol-distro 0.159.0", "Jaeger v1.76.0", "VictoriaLogs v1.52.1"):
        assert program in done.stderr
    assert not cache.exists(), "nothing is written without Go"


def test_up_before_build_says_to_build_first(tmp_path: Path) -> None:
    done = _run("stack", "up", "--free-ports", "--cache-dir", str(tmp_path), path=os.environ["PATH"])
    assert done.returncode == 2
    assert "run `otel-distro stack build` first" in done.stderr


def test_up_rejects_an_unknown_port_name(tmp_path: Path) -> None:
    done = _run("stack", "up", "--port", "grafana=3000", "--cache-dir", str(tmp_path), path=os.environ["PATH"])
    assert done.returncode == 2
    assert "unknown port name(s) grafana; accepted: otlp_grpc" in done.stderr
