"""``otel-distro verify``: the deployment gate, against the example service running for real."""

from __future__ import annotations

import json
import subprocess

import pytest

from otel_distro.verify import percentile
from tests.conftest import BIN, ROOT, free_port, telemetry_env

pytestmark = pytest.mark.integration


def _verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-distro"), "verify", *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """The example service under opentelemetry-instrument, with its Prometheus endpoint."""
    from tests.conftest import Service

    port, metrics_port = free_port(), free_port()
    env = telemetry_env(f"http://127.0.0.1:{free_port()}", OTEL_SERVICE_NAME="shop",
                        OTEL_TRACES_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="prometheus",
                        OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port))
    service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                       "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                      env, tmp_path_factory.mktemp("verify") / "shop.log")
    try:
        service.wait_http(f"http://127.0.0.1:{port}/health")
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        service.stop()


READY = ("--ready-path", "/health/ready")


def test_healthy_service_passes(shop) -> None:
    base, metrics = shop
    done = _verify(base, *READY, "--path", "/items", "--path", "/items/1", "--requests", "30",
                   "--metrics-url", metrics, "--p95-ms", "2000")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("PASS")
    assert "series http_server_request_duration_seconds  present" in done.stdout
    assert "30/30 requests" in done.stderr  # progress while it works


def test_error_threshold_fails_the_gate(shop) -> None:
    base, _ = shop
    done = _verify(base, *READY, "--path", "/items", "--path", "/fail", "--requests", "20",
                   "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    (errors,) = [c for c in report["checks"] if c["name"] == "error ratio"]
    assert errors["measured"].startswith("50.00% (10/20)") and errors["passed"] is False


def test_latency_threshold_fails_the_gate(shop) -> None:
    base, _ = shop
    done = _verify(base, *READY, "--path", "/slow?ms=60", "--requests", "5", "--p95-ms", "20",
                   "--json")
    assert done.returncode == 1
    (latency,) = [c for c in json.loads(done.stdout)["checks"] if c["name"] == "p95 latency"]
    assert latency["passed"] is False and float(latency["measured"].split()[0]) >= 60


def test_missing_series_fails_the_gate(shop) -> None:
    base, metrics = shop
    done = _verify(base, *READY, "--path", "/items", "--requests", "3", "--metrics-url", metrics,
                   "--series", "no_such_metric")
    assert done.returncode == 1
    assert "series no_such_metric  absent" in done.stdout


def test_unreachable_target_exits_2() -> None:
    done = _verify(f"http://127.0.0.1:{free_port()}", "--requests", "3")
    assert done.returncode == 2
    assert done.stdout.startswith("UNREACHABLE: http://127.0.0.1:")


def test_bad_usage_exits_2() -> None:
    assert _verify("http://127.0.0.1:1", "--requests", "0").returncode == 2


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 0.95) == 95
    assert percentile([5.0], 0.95) == 5.0
