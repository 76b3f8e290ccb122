"""No secret leaves a real instrumented service: >= 10,000 generated secrets, checked in the OTLP bytes and the console.

The service (tests/apps/redaction_app.py, FastAPI under opentelemetry-instrument,
OTEL_DISTRO_LOG_FORMAT=json) receives the generated cases in batches over
loopback HTTP and puts each one in a log message, an ``extra`` field, a span
attribute, a span event, an exception (logged and recorded on a span), a
span name, a span event's name, an attribute key, an ``extra`` key, a log's
``event.name`` or a logger's name. The test OTLP receiver keeps the raw protobuf bodies; the console
is the service's stderr/stdout.
"""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import BIN, Service, free_port, http_get, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.secret_cases import KINDS, embedded

pytestmark = pytest.mark.integration

PLACES = ["message", "extra", "span_attribute", "span_event", "exception", "span_name", "event_name",
          "attribute_key", "extra_key", "log_event_name", "logger_name"]
PER_KIND = 6  # cases of each kind per batch: 18 kinds x 6 = 108 per batch
BATCHES = 100  # 10,800 secrets in all
seen: Counter[str] = Counter()


class Running:
    def __init__(self, tmp: Path) -> None:
        self.receiver = OtlpTestReceiver().start()
        self.port = free_port()
        env = telemetry_env(self.receiver.endpoint, OTEL_SERVICE_NAME="cases", OTEL_DISTRO_LOG_FORMAT="json",
                            OTEL_METRICS_EXPORTER="none", OTEL_BSP_SCHEDULE_DELAY="20",
                            OTEL_BLRP_SCHEDULE_DELAY="20")
        self.service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                                "tests.apps.redaction_app:app", "--host", "127.0.0.1", "--port", str(self.port),
                                "--log-level", "warning"], env, tmp / "cases.log")
        self.base = f"http://127.0.0.1:{self.port}"
        self.raw_seen = 0
        self.console_seen = 0

    def post(self, path: str, payload: dict) -> None:
        request = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200

    def new_output(self, batch: str) -> tuple[bytes, str]:
        """Everything exported and printed since the last call, once the batch's last log and span are in."""
        receiver = self.receiver
        receiver.wait_for(lambda: any(f"batch done {batch}" == s.name for s in receiver.spans())
                          and any(l.body == f"batch done {batch}" for l in receiver.logs()),
                          timeout=60, what=f"batch {batch}")
        receiver.wait_for(lambda: f"batch done {batch}" in self.service.output(), timeout=30,
                          what="the console line")
        with receiver._lock:
            bodies = [body for _, body in receiver.raw[self.raw_seen:]]
            self.raw_seen += len(bodies)
        console = self.service.output()
        fresh, self.console_seen = console[self.console_seen:], len(console)
        return b"".join(bodies), fresh

    def stop(self) -> None:
        self.service.stop()
        self.receiver.stop()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory):
    started = Running(tmp_path_factory.mktemp("redaction"))
    try:
        started.service.wait_http(started.base + "/health")
        yield started
    finally:
        started.stop()


batches = st.tuples(*(st.lists(st.tuples(embedded(strategy), st.sampled_from(PLACES)),
                               min_size=PER_KIND, max_size=PER_KIND) for strategy in KINDS.values()))


@settings(max_examples=BATCHES, deadline=None, database=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                                 HealthCheck.function_scoped_fixture])
@given(batch=batches)
def _no_secret_of_the_batch_leaks(running: Running, batch) -> None:
    cases = [case_and_place for per_kind in batch for case_and_place in per_kind]
    name = uuid.uuid4().hex
    running.post("/cases", {"batch": name, "cases": [
        {"text": text, "key": case.key, "place": place} for (case, text), place in cases]})
    exported, console = running.new_output(name)
    leaks = [(case.kind, place, needle) for (case, _), place in cases for needle in case.needles
             if needle.encode() in exported or needle in console]
    assert leaks == []
    seen.update(case.kind for (case, _), _ in cases)
    seen.update(f"place:{place}" for _, place in cases)


def test_no_generated_secret_reaches_the_backend_or_the_console_and_every_kind_and_place_is_tried(
        running: Running) -> None:
    # One test, so the coverage check cannot run before the property test (the suite's order is random).
    seen.clear()
    _no_secret_of_the_batch_leaks(running)
    assert sum(seen[k] for k in KINDS) >= 10_000
    assert {k for k in KINDS if seen[k] == 0} == set()
    assert {p for p in PLACES if seen[f"place:{p}"] == 0} == set()


def test_secret_query_parameters_of_a_request_are_not_exported(running: Running) -> None:
    assert http_get(running.base + "/echo?page=2&access_token=Tk9zUmVkYWN0ZWQx&api_key=K3yV4lue9") == 200
    receiver = running.receiver
    receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "GET /echo"], what="the /echo span")
    receiver.wait_for(lambda: [l for l in receiver.logs() if l.body == "echo called"], what="the /echo log")
    with receiver._lock:
        exported = b"".join(body for _, body in receiver.raw)
    assert b"Tk9zUmVkYWN0ZWQx" not in exported and b"K3yV4lue9" not in exported


def test_ordinary_values_reach_the_backend_unchanged(running: Running) -> None:
    ordinary = ["4bf92f3577b34da6a3ce929d0e0e4736", "123e4567-e89b-12d3-a456-426614174000",
                "2026-11-05T10:00:00.123456Z", "$1,299.99", "1732012345678", "order created for 3 items"]
    name = uuid.uuid4().hex
    running.post("/cases", {"batch": name, "cases": [{"text": t, "place": "message", "key": None}
                                                     for t in ordinary]})
    _exported, console = running.new_output(name)
    bodies = {l.body for l in running.receiver.logs()}
    for value in ordinary:
        assert f"user wrote: {value}" in bodies
        assert json.dumps(f"user wrote: {value}") in console
