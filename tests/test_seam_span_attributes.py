"""The span-attributes seam: GenAI processors read a span's attribute names from the dict behind them; when that
read fails, the public attributes answer and every cost still reaches its spans."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider

from otel_distro._sdk_private import span_attributes as seam
from tests.conftest import fresh_guards
from tests.test_ai_metrics import Rig, rig
from tests.test_ai_spans import PRICE, USAGE, call, finished

__all__ = ["rig"]


def test_the_read_answers_what_the_public_attributes_hold_while_open_and_once_ended() -> None:
    (read,) = seam.new_guards()
    span = TracerProvider().get_tracer("t").start_span("s", attributes={"a": 1})
    span.set_attribute("b", "two")
    assert read(span) == dict(span.attributes) == {"a": 1, "b": "two"}
    span.end()
    assert read(span) == dict(span.attributes)
    finished_copy = ReadableSpan("copy", attributes={"c": 3.0})  # no BoundedAttributes: the public path answers
    assert read(finished_copy) == {"c": 3.0} and read.active


def test_a_failing_read_leaves_the_sums_to_the_public_attributes(
        rig: Rig, production_errors, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")

    def renamed(span: object) -> None:
        raise AttributeError("'BoundedAttributes' object has no attribute '_dict'")

    (read,) = fresh_guards(monkeypatch, seam, "READ")
    monkeypatch.setattr(read, "_fast", renamed)
    tracer = rig.tracer()
    with tracer.start_as_current_span("GET /plan"):
        with tracer.start_as_current_span("work"):
            call(tracer, "chat 1", USAGE)
        call(tracer, "chat 2", USAGE)
    root = finished(rig, "GET /plan").attributes
    assert (root["otel_distro.gen_ai.cost.total"], root["otel_distro.gen_ai.calls"]) == (pytest.approx(2 * PRICE), 2)
    assert finished(rig, "chat 1").attributes["gen_ai.usage.cost.amount"] == pytest.approx(PRICE)
    assert not read.active
    warnings = [r.getMessage() for r in caplog.records if "span_attributes.read" in r.getMessage()]
    assert len(warnings) == 1 and "AttributeError" in warnings[0], warnings
