"""A multi-process server's Prometheus endpoint counts every request its workers served."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import BIN, free_port, telemetry_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REQUESTS = 200


def _scrape(url: str) -> list:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return list(text_string_to_metric_families(reply.read().decode()))


def _pids_serving_metrics(url: str) -> set[str]:
    try:
        families = _scrape(url)
    except OSError:
        return set()
    return {s.labels.get("process_pid", "") for f in families if f.name == "target_info" for s in f.samples}


def _requests_counted_by_pid(url: str) -> dict[int, float]:
    counted: dict[int, float] = {}
    for family in _scrape(url):
        if family.name != "http_server_request_duration_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count") and sample.labels.get("http_route") == "/work":
                pid = int(sample.labels["process_pid"])
                counted[pid] = counted.get(pid, 0) + sample.value
    return counted


def _wait(condition, timeout: float, what: str, service) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if service.process.poll() is not None:
            raise AssertionError(f"the server exited while waiting for {what}:\n{service.output()}")
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{service.output()}")


def _server(kind: str, port: int) -> list[str]:
    if kind == "gunicorn":
        return [str(BIN / "gunicorn"), "tests.apps.workers_app:app", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
                "--bind", f"127.0.0.1:{port}", "--timeout", "120"]
    return [str(BIN / "uvicorn"), "tests.apps.workers_app:app", "--workers", "2", "--host", "127.0.0.1",
            "--port", str(port), "--timeout-worker-healthcheck", "60"]


@pytest.mark.parametrize("kind", ["gunicorn", "uvicorn"])
def test_scrape_totals_equal_the_requests_served_by_two_workers(kind, receiver, start_service) -> None:
    app_port, metrics_port = free_port(), free_port()
    service = start_service(
        [str(BIN / "opentelemetry-instrument"), *_server(kind, app_port)],
        telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME=f"workers-{kind}", OTEL_METRICS_EXPORTER="prometheus",
                      OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port)), name=kind)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    # The parent and both workers (uvicorn's multiprocessing resource tracker, a spawned interpreter too, may be
    # a fourth); spawned workers take long to start on a loaded machine.
    _wait(lambda: service.output().count("Application startup complete") == 2, 240, "two workers", service)
    _wait(lambda: len(_pids_serving_metrics(metrics_url)) >= 3, 60, "the parent's and two workers' metrics",
          service)
    served_by: dict[int, int] = {}
    for _ in range(REQUESTS):
        with urllib.request.urlopen(f"http://127.0.0.1:{app_port}/work", timeout=30) as reply:
            pid = json.loads(reply.read())["pid"]
            served_by[pid] = served_by.get(pid, 0) + 1
    counted = _requests_counted_by_pid(metrics_url)
    assert sum(counted.values()) == sum(served_by.values()) == REQUESTS, (served_by, counted)
    assert counted == served_by  # each worker's requests, under its own process_pid
