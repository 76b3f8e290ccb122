"""Two real services under opentelemetry-instrument: a FastAPI API and a Flask pricing service, each using
SQLAlchemy (sqlite) and Redis (a real redis-server), calling each other with httpx and requests."""

from __future__ import annotations

import shutil
import time

import pytest

from tests.conftest import BIN, free_port, http_get, telemetry_env

pytestmark = pytest.mark.integration

CLIENT, SERVER = 3, 2  # OTLP SpanKind
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


@pytest.fixture
def redis_url(start_service, tmp_path) -> str:
    if not shutil.which(REDIS_SERVER):
        pytest.fail("redis-server is not installed (Debian's redis-server package; .ci/run installs it)")
    port = free_port()
    redis = start_service([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                           "--appendonly", "no", "--dir", str(tmp_path)], {}, name="redis")
    redis.wait_port(port)
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture
def services(receiver, start_service, redis_url, tmp_path):
    api_port, pricing_port = free_port(), free_port()
    api_url, pricing_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{pricing_port}"
    common = {"REDIS_URL": redis_url, "PRICING_URL": pricing_url, "INVENTORY_URL": api_url}
    api = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"), "examples.inventory.api:app",
                         "--host", "127.0.0.1", "--port", str(api_port)],
                        telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="inventory-api",
                                      INVENTORY_DB=str(tmp_path / "api.db"), **common), name="api")
    pricing = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "flask"), "--app",
                             "examples.inventory.pricing", "run", "--host", "127.0.0.1", "--port", str(pricing_port)],
                            telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="pricing",
                                          INVENTORY_DB=str(tmp_path / "pricing.db"), **common), name="pricing")
    api.wait_http(api_url + "/ping")
    pricing.wait_http(pricing_url + "/prices/1")
    return api_url, pricing_url


def _spans(receiver, service: str) -> list:
    return [s for s in receiver.spans() if s.resource.get("service.name") == service]


def test_database_redis_and_http_client_calls_are_traced_and_measured(receiver, services) -> None:
    api_url, _ = services
    assert http_get(api_url + "/items/1?token=s3cr3t&page=2") == 200
    receiver.wait_for(lambda: any(s.name.startswith("GET /items") for s in _spans(receiver, "inventory-api")),
                      what="the API's server span")
    (server,) = [s for s in _spans(receiver, "inventory-api") if s.name == "GET /items/{item_id}"]
    trace_id = server.trace_id
    expected_systems = {("inventory-api", "sqlite"), ("inventory-api", "redis"), ("pricing", "sqlite"),
                        ("pricing", "redis")}

    def systems() -> set:
        return {(s.resource["service.name"], s.attributes.get("db.system.name")) for s in receiver.spans()
                if s.trace_id == trace_id and s.kind == CLIENT}

    http_clients = {"opentelemetry.instrumentation.httpx", "opentelemetry.instrumentation.requests"}

    def http_client_scopes() -> set:
        return {s.scope for s in receiver.spans() if s.trace_id == trace_id and s.kind == CLIENT
                and "http.request.method" in s.attributes}

    # Two processes export on their own schedules: wait for every span asserted on below, not a span count.
    def servers() -> list:
        return [(s.resource["service.name"], s.name) for s in receiver.spans()
                if s.trace_id == trace_id and s.kind == SERVER]

    receiver.wait_for(lambda: len([s for s in receiver.spans() if s.trace_id == trace_id]) >= 8
                      and expected_systems <= systems() and http_clients <= http_client_scopes()
                      and {service for service, _ in servers()} >= {"inventory-api", "pricing"}
                      and any(name == "GET /ping" for _, name in servers()), what="the whole trace")
    in_trace = [s for s in receiver.spans() if s.trace_id == trace_id]
    clients = [s for s in in_trace if s.kind == CLIENT]
    assert expected_systems <= systems()
    queries = [s for s in clients if s.resource["service.name"] == "inventory-api"
               and s.attributes.get("db.system.name") == "sqlite" and "db.query.text" in s.attributes]
    assert any(q.attributes["db.query.text"].startswith("SELECT") for q in queries)
    assert all(q.parent_span_id for q in queries)  # inside the request
    assert http_clients <= {s.scope for s in clients if "http.request.method" in s.attributes}
    # the Flask service continued the API's trace, and called the API back within it
    assert {s.resource["service.name"] for s in in_trace if s.kind == SERVER} == {"inventory-api", "pricing"}
    assert len([s for s in in_trace if s.kind == SERVER and s.name == "GET /ping"]) == 1
    # the SERVER span: recommended attributes, the query redacted on its way out
    assert server.attributes["server.port"] == int(api_url.rsplit(":", 1)[1])
    assert server.attributes["user_agent.original"].startswith("Python-urllib")
    assert "page=2" in server.attributes["url.query"] and "s3cr3t" not in server.attributes["url.query"]

    def durations(name: str) -> set:
        return {(m.resource.get("service.name"), p.attributes.get("db.system.name"))
                for m in receiver.metric(name) for p in m.points}

    receiver.wait_for(lambda: {("inventory-api", "sqlite"), ("inventory-api", "redis"), ("pricing", "sqlite"),
                               ("pricing", "redis")} <= durations("db.client.operation.duration"),
                      what="database operation durations")
    receiver.wait_for(lambda: {m.resource.get("service.name") for m in receiver.metric("http.client.request.duration")}
                      >= {"inventory-api", "pricing"}, what="HTTP client durations")
    receiver.wait_for(lambda: receiver.metric("http.server.request.body.size")
                      and receiver.metric("http.server.active_requests"), what="the server's size and active metrics")
    pool = [m for m in receiver.metrics() if m.name.startswith("db.client.connection")]
    assert pool, "SQLAlchemy's connection-pool metrics"


def test_an_unhandled_api_exception_is_one_error_log_record_in_its_trace(receiver, services) -> None:
    api_url, _ = services
    assert http_get(api_url + "/fail") == 500
    receiver.wait_for(lambda: [s for s in _spans(receiver, "inventory-api") if s.name == "GET /fail"], what="span")
    (span,) = [s for s in _spans(receiver, "inventory-api") if s.name == "GET /fail"]
    assert span.attributes["error.type"] == "ValueError"
    receiver.wait_for(lambda: [l for l in receiver.logs() if l.trace_id == span.trace_id], what="the log record")
    time.sleep(1)  # a second record would come in the same export interval
    records = [l for l in receiver.logs() if l.trace_id == span.trace_id and l.attributes.get("exception.type")]
    assert len(records) == 1
    (record,) = records
    assert record.severity_text == "ERROR" and record.span_id == span.span_id
    assert record.attributes["exception.type"] == "ValueError"
    assert record.attributes["exception.message"] == "inventory ledger unreadable"
