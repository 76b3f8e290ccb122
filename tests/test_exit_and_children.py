"""Exit is quick when nothing can be delivered; children that only inherited the hook stay quiet."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.conftest import BIN, free_port, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver

pytestmark = pytest.mark.integration

# A short program that makes one span, then exits.
ONE_SPAN = "from opentelemetry import trace; trace.get_tracer('t').start_span('work').end()"

# Prints what the child got: the type of its tracer provider, on stdout.
CHILD = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"

# Runs CHILD in a child interpreter whose environment has no OTEL_* variable (as FastAPI's test helpers do),
# then once more with a service name of its own.
PARENT = f"""
import os, subprocess, sys
stripped = {{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}}
for env in (stripped, dict(stripped, OTEL_SERVICE_NAME="child", OTEL_TRACES_EXPORTER="none",
                          OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")):
    done = subprocess.run([sys.executable, "-c", {CHILD!r}], env=env, capture_output=True, text=True)
    print("child:", done.stdout.strip(), "stderr:", repr(done.stderr))
"""


def _run(program: str, env: dict[str, str], timeout: float = 120) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-c", program],
                          env=env, capture_output=True, text=True, timeout=timeout)
    return done, time.monotonic() - started


def test_exit_is_quick_when_no_collector_accepts_connections() -> None:
    # Allowed 60 s to flush and 120 s per export: without the reachability check exit would wait the 60 s.
    env = telemetry_env(f"http://127.0.0.1:{free_port()}", OTEL_SERVICE_NAME="exit-test",
                        OTEL_DISTRO_SHUTDOWN_TIMEOUT="60", OTEL_EXPORTER_OTLP_TIMEOUT="120000")
    done, took = _run(ONE_SPAN, env)
    assert done.returncode == 0, done.stderr
    assert took < 40, f"exit took {took:.1f}s with the Collector down"
    assert "no OTLP endpoint accepts connections at exit" in done.stderr


def test_what_can_be_delivered_at_exit_is_delivered() -> None:
    with OtlpTestReceiver() as receiver:
        env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="exit-test", OTEL_BSP_SCHEDULE_DELAY="60000")
        done, _ = _run(ONE_SPAN, env)
        assert done.returncode == 0, done.stderr
        assert [span.name for span in receiver.spans()] == ["work"]


def test_a_child_that_only_inherited_the_hook_stays_quiet() -> None:
    env = telemetry_env(f"http://127.0.0.1:{free_port()}", OTEL_SERVICE_NAME="parent",
                        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    done, _ = _run(PARENT, env)
    assert done.returncode == 0, done.stderr
    quiet, configured = [line for line in done.stdout.splitlines() if line.startswith("child:")]
    assert quiet.startswith("child: ProxyTracerProvider stderr:")  # no telemetry
    # nothing from the distro (the upstream distro, installed for the benchmarks, may say which configurator won)
    assert "otel-distro" not in quiet and "OTEL_SERVICE_NAME" not in quiet
    assert configured.startswith("child: TracerProvider")
