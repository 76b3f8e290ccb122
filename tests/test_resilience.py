"""What production brings: forks, a dead Collector, SIGTERM, several configure() calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import BIN, ROOT, free_port, http_get, telemetry_env

pytestmark = pytest.mark.integration


def _drive_until(base: str, done, limit: int = 400, seconds: float = 30.0) -> int:
    """Send requests (new connection each) until ``done()`` or the bound is reached."""
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < limit and time.monotonic() < deadline and not done():
        assert http_get(base + "/items/1") == 200
        sent += 1
    return sent


def _instances(receiver) -> set[tuple[str, int]]:
    return {(s.resource["service.instance.id"], s.resource["process.pid"]) for s in receiver.spans()}


def _assert_each_worker_reports(receiver, service, base: str) -> None:
    # The kernel may hand every connection to the worker that started first while
    # the other is still importing (slow on a loaded machine): bound by time, not count.
    _drive_until(base, lambda: len(_instances(receiver)) >= 2, limit=3000, seconds=40.0)
    instances = receiver.wait_for(lambda: len(_instances(receiver)) >= 2 and _instances(receiver),
                                  what="spans from two worker processes")
    ids = [i for i, _ in instances]
    pids = [p for _, p in instances]
    assert len(set(ids)) == len(ids) == len(set(pids))  # one instance id per process
    assert service.process.pid not in pids  # the workers, not the supervisor
    for _, pid in instances:
        receiver.wait_for(lambda pid=pid: [m for m in receiver.metrics()
                                           if m.resource.get("process.pid") == pid
                                           and m.name == "http.server.request.duration"],
                          what=f"metrics from worker {pid}")
        receiver.wait_for(lambda pid=pid: [l for l in receiver.logs()
                                           if l.resource.get("process.pid") == pid],
                          what=f"logs from worker {pid}")


def test_uvicorn_workers_each_report_with_their_own_instance_id(receiver, start_service) -> None:
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1",
                             "--port", str(port), "--workers", "2",
                             # uvicorn kills a worker that has not answered its health check after 5 s; a
                             # worker's start-up under opentelemetry-instrument can take longer on a loaded machine
                             "--timeout-worker-healthcheck", "60"],
                            telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health", timeout=90)
    _assert_each_worker_reports(receiver, service, base)
    service.stop()
    assert service.process.returncode is not None  # stopped, nothing hung


def test_gunicorn_preload_forked_workers_each_report(receiver, start_service) -> None:
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "gunicorn"),
                             "--preload", "-k", "uvicorn.workers.UvicornWorker", "-w", "2",
                             "-b", f"127.0.0.1:{port}", "examples.fastapi_app.main:app"],
                            # A loaded machine starts a worker in more than the 5 s uvicorn waits for its
                            # first health answer: it would kill and restart workers without end.
                            telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop",
                                          UVICORN_TIMEOUT_WORKER_HEALTHCHECK="60"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health", timeout=90)
    _assert_each_worker_reports(receiver, service, base)
    service.stop()
    assert service.process.returncode is not None


def test_unreachable_collector_does_not_hurt_the_service(start_service) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1",
                             "--port", str(port)],
                            telemetry_env(dead, OTEL_SERVICE_NAME="shop",
                                          OTEL_EXPORTER_OTLP_TIMEOUT="1000"))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    statuses = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline and len(statuses) < 300:
        statuses.append(http_get(base + "/items/1"))
        time.sleep(0.02)
    assert set(statuses) == {200}
    service.stop()
    output = service.output()
    assert "Traceback" not in output
    export_lines = [line for line in output.splitlines()
                    if re.search(r"export|Transient error", line, re.I)]
    # One line per exporter logger and interval (60 s): spans, metrics, logs and their client.
    assert 1 <= len(export_lines) <= 6, "\n".join(export_lines)


@pytest.mark.parametrize("runner", ["python", "uvicorn"])
def test_sigterm_flushes_everything_pending(receiver, start_service, runner: str) -> None:
    count = 3000
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="burst",
                        OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_BLRP_SCHEDULE_DELAY="60000",
                        OTEL_BSP_MAX_QUEUE_SIZE="10000", OTEL_BLRP_MAX_QUEUE_SIZE="10000",
                        OTEL_METRIC_EXPORT_INTERVAL="60000", OTEL_DISTRO_SYSTEM_METRICS="false",
                        OTEL_DISTRO_SHUTDOWN_TIMEOUT="20")
    if runner == "python":
        argv = [str(BIN / "opentelemetry-instrument"), sys.executable,
                str(ROOT / "tests" / "apps" / "pending_burst.py"), str(count)]
        service = start_service(argv, env)
        deadline = time.monotonic() + 30
        while "ready" not in service.output() and time.monotonic() < deadline:
            assert service.process.poll() is None, service.output()
            time.sleep(0.05)
        expected_spans, expected_logs = count, count
    else:
        port = free_port()
        service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                                 "examples.fastapi_app.main:app", "--host", "127.0.0.1",
                                 "--port", str(port)], env)
        service.wait_http(f"http://127.0.0.1:{port}/health")
        for _ in range(50):
            assert http_get(f"http://127.0.0.1:{port}/items") == 200
        expected_spans, expected_logs = 50, 50
    assert len(receiver.spans()) < expected_spans  # some still pending (full batches may leave early)
    service.signal()
    service.wait(30)
    spans = [s for s in receiver.spans()]
    logs = [l for l in receiver.logs() if l.resource.get("service.name") == "burst"]
    assert len(spans) == expected_spans
    assert len([l for l in logs if str(l.body).startswith(("item ", "listing"))]) == expected_logs
    if runner == "python":
        # Cumulative: the last export holds the total (flush and shutdown may both export).
        (point,) = receiver.metric("burst.items")[-1].points
        assert point.value == count


def test_configure_in_code_is_idempotent_and_flushes(receiver) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY="60000")
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "apps" / "code_configured.py")],
                          env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # span processors: the SERVER spans' end batches, the batch exporter, the GenAI processor (content policy and
    # metrics), the database durations: once each
    assert report == {"same": True, "span_processors": 4, "bridges": 1, "service": "coded"}
    (span,) = receiver.spans()
    assert span.name == "work" and span.resource["service.name"] == "coded"
    (log,) = [l for l in receiver.logs() if l.body == "from code"]
    assert log.trace_id == span.trace_id


def test_forked_child_opens_its_own_exporter_connection(receiver) -> None:
    count = 150
    env = telemetry_env(receiver.endpoint)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "apps" / "fork_race.py"),
                           str(count)], env=env, capture_output=True, text=True, timeout=90,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert receiver.errors == []  # no request garbled by two writers on one socket
    by_name: dict[str, set[int]] = {}
    for span in receiver.spans():
        by_name.setdefault(span.name, set()).add(span.resource["process.pid"])
    assert sorted(by_name) == ["before-fork", "child", "parent"]
    assert by_name["child"].isdisjoint(by_name["parent"])
    assert len([s for s in receiver.spans() if s.name == "child"]) == count
    assert len([s for s in receiver.spans() if s.name == "parent"]) == count
