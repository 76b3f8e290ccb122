"""The ending-span seam: when spans cannot be changed while they end, the GenAI content policy still holds,
applied by the span exporters to copies; the content never leaves the process as captured."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_distro import redaction
from otel_distro._sdk_private import ending_span as seam
from otel_distro.ai import content
from tests.conftest import fresh_guards
from tests.otlp_test_receiver import OtlpTestReceiver

PROMPT = '[{"role": "user", "content": "zebra-marker password=hunter2"}]'


def _changed_internals(*args: Any) -> bool:
    raise AttributeError("'BoundedAttributes' object has no attribute '_dict'")


@pytest.fixture
def rewrite_broken(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(content, "_at_export", None)  # restored after the test, whatever it set
    monkeypatch.setattr(seam, "_rewrite_frozen", _changed_internals)
    (_, rewrite) = fresh_guards(monkeypatch, seam, "add_attributes", "rewrite")
    return rewrite


def _provider(receiver: OtlpTestReceiver, policy: str) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(content.ContentSpanProcessor(content.ContentPolicy(policy, 1000)))
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=2)
    provider.add_span_processor(SimpleSpanProcessor(redaction.wrap_span_exporter(exporter, None)))
    return provider


def _chat(provider: TracerProvider, name: str) -> None:
    with provider.get_tracer("genai").start_as_current_span(
            name, attributes={"gen_ai.operation.name": "chat", "gen_ai.input.messages": PROMPT}) as span:
        span.add_event("gen_ai.choice", {"gen_ai.output.messages": "the answer, zebra-marker"})


def test_content_is_removed_at_export_once_spans_cannot_be_changed_as_they_end(
        receiver: OtlpTestReceiver, rewrite_broken: Any, production_errors: None,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    provider = _provider(receiver, content.OFF)
    _chat(provider, "chat first")  # the private rewrite fails on this one
    _chat(provider, "chat second")  # and is off from then on
    with provider.get_tracer("app").start_as_current_span("GET /items", attributes={"http.route": "/items"}):
        pass
    provider.shutdown()
    assert not rewrite_broken.active
    spans = {s.name: s for s in receiver.wait_for(lambda: receiver.spans() if len(receiver.spans()) == 3 else None,
                                                  what="three spans")}
    for name in ("chat first", "chat second"):
        assert "gen_ai.input.messages" not in spans[name].attributes
        assert spans[name].attributes[content.MARKER] == content.REMOVED
        assert [attributes for _, attributes in spans[name].events] == [{content.MARKER: content.REMOVED}]
    assert spans["GET /items"].attributes == {"http.route": "/items"}  # not a GenAI span: left as it was
    assert b"zebra-marker" not in b"".join(body for _, body in list(receiver.raw))
    said = [r.getMessage() for r in caplog.records if "applied to copies at export" in r.getMessage()]
    assert len(said) == 1


def test_with_the_rewrite_working_the_exporters_copy_nothing(receiver: OtlpTestReceiver,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(content, "_at_export", None)
    fresh_guards(monkeypatch, seam, "add_attributes", "rewrite")
    provider = _provider(receiver, content.OFF)
    _chat(provider, "chat")
    provider.shutdown()
    (span,) = receiver.wait_for(lambda: receiver.spans(), what="the chat span")
    assert span.attributes[content.MARKER] == content.REMOVED and "gen_ai.input.messages" not in span.attributes
    assert content.policy_at_export() is None  # the spans were changed as they ended


def test_when_the_probe_fails_at_start_up_the_exporters_apply_the_policy(
        receiver: OtlpTestReceiver, rewrite_broken: Any, production_errors: None) -> None:
    from opentelemetry.sdk.metrics import MeterProvider

    from otel_distro import ai
    from otel_distro.settings import load

    provider = TracerProvider()
    exporter = OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=2)
    provider.add_span_processor(SimpleSpanProcessor(redaction.wrap_span_exporter(exporter, None)))
    assert ai.install(load({"OTEL_DISTRO_AI_CONTENT": "off"}), provider, MeterProvider()) is not None
    try:
        assert not rewrite_broken.active and content.policy_at_export() is not None
        _chat(provider, "chat")
        provider.shutdown()
    finally:
        ai.uninstall()
    (span,) = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "chat"], what="the chat span")
    assert span.attributes[content.MARKER] == content.REMOVED and "gen_ai.input.messages" not in span.attributes


def test_an_sdk_that_never_calls_the_ending_hook_fails_the_probe(monkeypatch: pytest.MonkeyPatch,
                                                                  production_errors: None) -> None:
    from opentelemetry.sdk import trace as sdk_trace

    monkeypatch.setattr(sdk_trace.SynchronousMultiSpanProcessor, "_on_ending", lambda self, span: None)
    (_, rewrite) = fresh_guards(monkeypatch, seam, "add_attributes", "rewrite")
    assert rewrite.probe(seam._probe_rewrite) is False and not rewrite.active
