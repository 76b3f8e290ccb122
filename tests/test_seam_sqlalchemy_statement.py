"""The SQLAlchemy statement seam: while contrib's span of a statement is open, the driver runs it with
instrumentation suppressed (so a driver instrumentation adds no second span); when the seam fails, statements run as
before."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine

from otel_distro._sdk_private import sqlalchemy_statement as seam
from otel_distro.integrations import sqlalchemy as integration
from tests.conftest import fresh_guards


@pytest.fixture
def listening(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    fresh_guards(monkeypatch, seam, "OPEN_SPAN")
    integration.instrument()
    yield
    SQLAlchemyInstrumentor().uninstrument()  # one instrumentor per process: the next test instruments its engine
    for name, listener in (("do_execute", integration._do_execute), ("do_executemany", integration._do_executemany),
                           ("do_execute_no_params", integration._do_execute_no_params)):
        event.remove(Engine, name, listener)


def _engine(traced: bool) -> tuple[Engine, InMemorySpanExporter, list[bool]]:
    """A sqlite engine whose SQL can ask whether instrumentation is enabled while the driver runs it."""
    engine = create_engine("sqlite://")
    enabled: list[bool] = []

    @event.listens_for(engine, "connect")
    def add_probe(dbapi_connection, _record) -> None:
        dbapi_connection.create_function("probe", 0, lambda: enabled.append(is_instrumentation_enabled()) or 1)

    spans = InMemorySpanExporter()
    if traced:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(spans))
        SQLAlchemyInstrumentor().instrument(engine=engine, tracer_provider=provider)
    return engine, spans, enabled


def test_the_driver_runs_a_traced_statement_with_instrumentation_suppressed(listening) -> None:
    engine, spans, enabled = _engine(traced=True)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT probe()")).scalar_one() == 1
    assert enabled == [False]
    # the statement's span (stable or older attribute names, as this process's semconv opt-in says)
    (span,) = [s for s in spans.get_finished_spans() if s.name == "SELECT"]
    assert "SELECT probe()" in (span.attributes.get("db.query.text"), span.attributes.get("db.statement"))
    assert is_instrumentation_enabled()  # suppression ended with the statement


def test_an_untraced_engine_runs_as_before(listening) -> None:
    engine, _, enabled = _engine(traced=False)
    with engine.connect() as connection:
        connection.execute(text("SELECT probe()"))
    assert enabled == [True]


def test_when_the_seam_fails_the_statement_still_runs_unsuppressed(listening, production_errors,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _, enabled = _engine(traced=True)
    monkeypatch.setattr(seam, "_ATTRIBUTE", "_not_a_span_at_all")
    monkeypatch.setattr(seam, "_open_span", lambda context: context._not_a_span_at_all.is_recording())
    fresh_guards(monkeypatch, seam, "OPEN_SPAN")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT probe()")).scalar_one() == 1
    assert enabled == [True] and not seam.OPEN_SPAN.active
