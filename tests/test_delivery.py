"""Delivery under real load and hostile values, seen from a real process and the receiver's decoded bytes."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import BIN, ROOT, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver


def run_instrumented(script: str, *args: str, env: dict[str, str], timeout: float = 300.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, script, *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_lone_surrogate_in_one_span_costs_only_itself(receiver: OtlpTestReceiver) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="files", OTEL_METRICS_EXPORTER="none",
                        OTEL_LOGS_EXPORTER="none")
    done = run_instrumented("tests/apps/surrogate_spans.py", env=env)
    assert done.returncode == 0, done.stderr
    spans = receiver.wait_for(lambda: len(receiver.spans()) >= 101 and receiver.spans(), what="101 spans")
    names = sorted(s.name for s in spans)
    assert len(names) == 101
    assert "open report-\\udcff.csv" in names  # escaped, not lost
    bad = next(s for s in spans if s.name == "open report-\\udcff.csv")
    assert bad.attributes == {"file.index": 50, "file.path": "/data/report-\\udcff.csv"}
    assert bad.events == [("open report-\\udcff.csv", {"note": "report-\\udcff.csv"})]
    assert "not valid Unicode" in done.stderr and "backslash escapes" in done.stderr
    assert "copy-based" not in done.stderr
