"""A real FastAPI service on a real PostgreSQL server, under opentelemetry-instrument with the distro: psycopg and
asyncpg queries become database CLIENT spans with the stable conventions, their durations become
``db.client.operation.duration`` (each counted once), a statement through SQLAlchemy is one span (SQLAlchemy's, the
driver's instrumentation quiet inside it), SQLAlchemy's pool reports its connections, and the query text leaves the
process redacted."""

from __future__ import annotations

import os
import pwd
import time
from collections.abc import Iterator

import pytest

from tests import postgres_server
from tests.conftest import BIN, free_port, http_get, telemetry_env

pytestmark = pytest.mark.integration

CLIENT, SERVER = 3, 2  # OTLP SpanKind


@pytest.fixture
def postgres() -> Iterator[postgres_server.Cluster]:
    binaries = postgres_server.bin_dir()
    if binaries is None:
        pytest.fail("PostgreSQL is not installed (Debian's postgresql package; .ci/run installs it)")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root, and there is no 'postgres' user to run the server as "
                        "(Debian's postgresql package creates it)")
    with postgres_server.cluster(binaries, "shop") as running:
        yield running


@pytest.fixture
def service(receiver, start_service, postgres) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"), "tests.apps.postgres_app:app",
                         "--host", "127.0.0.1", "--port", str(port)],
                        telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="accounts", PG_DSN=postgres.dsn),
                        name="accounts")
    app.wait_http(url + "/docs", timeout=60)
    return url


def _clients_under(receiver, route: str) -> list:
    servers = [s for s in receiver.spans() if s.kind == SERVER and s.name == f"GET {route}"]
    traces = {s.trace_id for s in servers}
    return [s for s in receiver.spans() if s.kind == CLIENT and s.trace_id in traces]


def _statements(spans: list) -> set[str]:
    return {s.attributes.get("db.query.text") for s in spans}


def _counts(receiver) -> dict[tuple, int]:
    """PostgreSQL operations in db.client.operation.duration so far: the latest (cumulative) export of each scope,
    summed, by operation, namespace and port."""
    latest = {m.scope: m for m in receiver.metric("db.client.operation.duration")}
    counted: dict[tuple, int] = {}
    for metric in latest.values():
        assert metric.unit == "s"
        for point in metric.points:
            if point.attributes.get("db.system.name") == "postgresql":
                key = tuple(point.attributes.get(k) for k in ("db.operation.name", "db.namespace", "server.port"))
                counted[key] = counted.get(key, 0) + point.count
    return counted


@pytest.mark.timeout(300)
def test_psycopg_and_asyncpg_queries_are_spans_with_the_stable_database_conventions(
        receiver, service, postgres) -> None:
    assert http_get(service + "/psycopg/accounts/1") == 200
    assert http_get(service + "/asyncpg/accounts/1") == 200
    receiver.wait_for(lambda: len(_clients_under(receiver, "/psycopg/accounts/{account_id}")) >= 2
                      and _clients_under(receiver, "/asyncpg/accounts/{account_id}"), what="the queries' spans")
    by_driver = {"psycopg": _clients_under(receiver, "/psycopg/accounts/{account_id}"),
                 "asyncpg": _clients_under(receiver, "/asyncpg/accounts/{account_id}")}
    for driver, spans in by_driver.items():
        (select,) = [s for s in spans if (s.attributes.get("db.query.text") or "").startswith("SELECT email")]
        assert select.scope == f"opentelemetry.instrumentation.{driver}", driver
        assert select.attributes["db.system.name"] == "postgresql", driver
        assert select.attributes["db.namespace"] == "shop", driver
        assert select.attributes["db.operation.name"] == "SELECT", driver
        assert select.attributes["server.address"] == "127.0.0.1", driver
        assert select.attributes["server.port"] == postgres.port, driver
        assert "db.system" not in select.attributes and "db.statement" not in select.attributes, driver
    # the literal password and e-mail in the statement never leave the process
    assert ("UPDATE accounts SET password = '[REDACTED]' WHERE email = 'a***@example.com'"
            in _statements(by_driver["psycopg"]))
    assert not any("hunter2" in str(s.attributes) or "alice@" in str(s.attributes)
                   for s in receiver.spans())

    select, update = ("SELECT", "shop", postgres.port), ("UPDATE", "shop", postgres.port)
    receiver.wait_for(lambda: _counts(receiver).get(select, 0) >= 2 and update in _counts(receiver),
                      what="the queries' durations")
    time.sleep(1.5)  # a second count of one operation would be in the next exports
    # one SELECT through each driver, each counted once (psycopg's instrumentation records its own)
    assert _counts(receiver)[select] == 2 and _counts(receiver)[update] == 1


@pytest.mark.timeout(300)
def test_a_statement_through_sqlalchemy_is_one_span_and_its_pools_report_their_connections(
        receiver, service, postgres) -> None:
    for _ in range(3):
        assert http_get(service + "/pool/accounts") == 200
    assert http_get(service + "/async-pool/accounts") == 200

    def usage() -> set:
        return {(p.attributes["pool.name"], p.attributes["state"])
                for m in receiver.metric("db.client.connections.usage")
                for p in m.points if str(postgres.port) in str(p.attributes.get("pool.name"))}

    # contrib's SQLAlchemy instrumentation (0.66) offers the pools' connections by state, under its older name
    expected = {(f"postgresql+{driver}://127.0.0.1:{postgres.port}/shop", state)
                for driver in ("psycopg", "asyncpg") for state in ("idle", "used")}
    receiver.wait_for(lambda: usage() == expected, what="both pools' connection metrics")

    def counted() -> list:
        return [s for s in _clients_under(receiver, "/pool/accounts")
                if s.attributes.get("db.query.text") == "SELECT count(*) FROM accounts"]

    receiver.wait_for(lambda: len(counted()) >= 3, what="the three statements' spans")
    time.sleep(1)  # a driver's span of the same statement would be in the same or the next export
    # one span per statement: SQLAlchemy's; psycopg's instrumentation stays quiet inside it
    assert {s.scope for s in counted()} == {"opentelemetry.instrumentation.sqlalchemy"} and len(counted()) == 3
    assert all(s.attributes["db.system.name"] == "postgresql" and s.attributes["db.namespace"] == "shop"
               and s.attributes["db.operation.name"] == "SELECT" and s.attributes["server.port"] == postgres.port
               for s in counted())
    # the same over asyncpg (SQLAlchemy's asyncio extension)
    receiver.wait_for(lambda: _clients_under(receiver, "/async-pool/accounts"), what="the async statement's span")
    (newest,) = [s for s in _clients_under(receiver, "/async-pool/accounts")
                 if s.attributes.get("db.query.text") == "SELECT max(id) FROM accounts"]
    assert newest.scope == "opentelemetry.instrumentation.sqlalchemy"
    select = ("SELECT", "shop", postgres.port)
    receiver.wait_for(lambda: _counts(receiver).get(select, 0) >= 4, what="the statements' durations")
    time.sleep(1.5)  # a second count of one statement would be in the next exports
    assert _counts(receiver)[select] == 4
