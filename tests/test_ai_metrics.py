"""GenAI meters with in-memory readers: the API, spans of any instrumentation, sampling, baggage."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from genai_prices import Usage, calc_price
from opentelemetry import baggage, context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode

from otel_distro import ai
from otel_distro.ai import meters as meters_module
from otel_distro.ai import semconv
from otel_distro.settings import load


@dataclass
class Rig:
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    reader: InMemoryMetricReader
    spans: InMemorySpanExporter
    runtime: ai.Runtime

    def tracer(self, scope: str = "some.instrumentation") -> Any:
        return self.tracer_provider.get_tracer(scope)

    def points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    if metric.name == name:
                        for p in metric.data.data_points:
                            value = p.value if hasattr(p, "value") else (p.sum, p.count)
                            out.append(({**p.attributes, "_scope": sm.scope.name}, value))
        return out

    def total(self, name: str, **match: Any) -> float:
        return sum(v for a, v in self.points(name) if all(a.get(k) == x for k, x in match.items()))


def make_rig(sampler: Any = ALWAYS_ON, **env: str) -> Rig:
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider(sampler=sampler)
    spans = InMemorySpanExporter()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    runtime = ai.install(load(env), tracer_provider, meter_provider)
    assert runtime is not None
    return Rig(tracer_provider, meter_provider, reader, spans, runtime)


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield make_rig()
    ai.uninstall()


def genai_prices(model: str, inp: int, out: int, cache_read: int = 0, provider: str = "openai") -> float:
    usage = Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=cache_read)
    return float(calc_price(usage, model, provider_id=provider).total_price)


# ------------------------------------------------------------------ the API

def test_llm_call_records_tokens_duration_cost_and_a_span(rig: Rig) -> None:
    with ai.llm_call("openai", "gpt-4o", "chat", server_address="api.openai.com") as call:
        cost = call.record_usage(1200, 300, cache_read_tokens=1000, response_model="gpt-4o-2024-08-06")
    expected = genai_prices("gpt-4o", 1200, 300, 1000)
    assert cost == pytest.approx(expected, rel=1e-9)
    assert rig.total(semconv.COST) == pytest.approx(expected, rel=1e-9)
    by_type = {a[semconv.TOKEN_TYPE]: v for a, v in rig.points(semconv.COST)}
    assert set(by_type) == {"input", "output", "cache_read"}
    assert all(a[semconv.COST_SOURCE] == "local" for a, _ in rig.points(semconv.COST))
    assert rig.total(semconv.CACHE_SAVINGS) == pytest.approx(1000 * (2.5 - 1.25) / 1e6)
    tokens = {a[semconv.TOKEN_TYPE]: v for a, v in rig.points(semconv.TOKEN_USAGE)}
    assert tokens == {"input": (1200, 1), "output": (300, 1)}
    ((attrs, (_, count)),) = rig.points(semconv.OPERATION_DURATION)
    assert count == 1 and attrs[semconv.RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert attrs[semconv.SERVER_ADDRESS] == "api.openai.com" and semconv.ERROR_TYPE not in attrs
    (span,) = rig.spans.get_finished_spans()
    assert span.name == "chat gpt-4o" and span.kind is SpanKind.CLIENT
    assert span.attributes[semconv.PROVIDER_NAME] == "openai"
    assert span.attributes[semconv.USAGE_INPUT_TOKENS] == 1200
    assert span.attributes[semconv.USAGE_CACHE_READ] == 1000


def test_histograms_use_the_semconv_buckets(rig: Rig) -> None:
    with ai.llm_call("openai", "gpt-4o") as call:
        call.record_usage(10, 10)
    for rm in rig.reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == semconv.TOKEN_USAGE:
                    assert tuple(metric.data.data_points[0].explicit_bounds) == semconv.TOKEN_BUCKETS
                if metric.name == semconv.OPERATION_DURATION:
                    assert tuple(metric.data.data_points[0].explicit_bounds) == semconv.DURATION_BUCKETS


def test_llm_call_failure_records_error_type_and_raises(rig: Rig) -> None:
    with pytest.raises(TimeoutError), ai.llm_call("anthropic", "claude-3-5-sonnet-latest"):
        raise TimeoutError("slow")
    ((attrs, (_, count)),) = rig.points(semconv.OPERATION_DURATION)
    assert count == 1 and attrs[semconv.ERROR_TYPE] == "TimeoutError"
    assert rig.points(semconv.COST) == [] and rig.points(semconv.UNPRICED_CALLS) == []
    (span,) = rig.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR and span.attributes[semconv.ERROR_TYPE] == "TimeoutError"


def test_unknown_model_is_counted_unpriced_never_as_zero(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for _ in range(3):
            with ai.llm_call("openai", "gpt-unreleased") as call:
                assert call.record_usage(100, 10) is None
    assert rig.points(semconv.COST) == []
    ((attrs, value),) = rig.points(semconv.UNPRICED_CALLS)
    assert value == 3 and attrs[semconv.REQUEST_MODEL] == "gpt-unreleased"
    assert sum("gpt-unreleased" in r.getMessage() for r in caplog.records) == 1


def test_provider_reported_cost_is_recorded_as_such(rig: Rig) -> None:
    assert ai.record_call("openai", "gpt-4o", input_tokens=1000, output_tokens=1000, provider_cost=0.02) == 0.02
    points = rig.points(semconv.COST)
    assert {a[semconv.COST_SOURCE] for a, _ in points} == {"provider"}
    assert sum(v for _, v in points) == pytest.approx(0.02)
    ai.record_call("acme", "private", input_tokens=10, output_tokens=30,
                   provider_cost={"input": 0.001, "output": 0.003})
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "private"}) == pytest.approx(0.004)
    assert rig.points(semconv.UNPRICED_CALLS) == []


def test_llm_call_annotates_an_open_genai_span_instead_of_nesting(rig: Rig) -> None:
    tracer = rig.tracer("my.app")
    open_span = {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai", semconv.REQUEST_MODEL: "gpt-4o"}
    with tracer.start_as_current_span("chat gpt-4o", attributes=open_span), ai.llm_call("openai", "gpt-4o") as call:
        call.record_usage(100, 50)
    (span,) = rig.spans.get_finished_spans()
    assert span.attributes[semconv.USAGE_OUTPUT_TOKENS] == 50
    assert rig.total(semconv.COST) == pytest.approx(genai_prices("gpt-4o", 100, 50))  # once, not twice


# ------------------------------------------------------ spans of instrumentations

CHAT = {semconv.OPERATION_NAME: "chat", semconv.PROVIDER_NAME: "openai", semconv.REQUEST_MODEL: "gpt-4o-mini",
        semconv.SERVER_ADDRESS: "api.openai.com"}


def test_span_with_current_attribute_names_is_priced(rig: Rig) -> None:
    with rig.tracer().start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes=CHAT) as span:
        span.set_attribute(semconv.USAGE_INPUT_TOKENS, 2000)
        span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 500)
        span.set_attribute(semconv.USAGE_CACHE_READ, 1500)
        span.set_attribute(semconv.RESPONSE_MODEL, "gpt-4o-mini-2024-07-18")
    assert rig.total(semconv.COST) == pytest.approx(genai_prices("gpt-4o-mini", 2000, 500, 1500), rel=1e-9)
    tokens = {a[semconv.TOKEN_TYPE]: v for a, v in rig.points(semconv.TOKEN_USAGE)}
    assert tokens == {"input": (2000, 1), "output": (500, 1)}
    ((attrs, _),) = rig.points(semconv.OPERATION_DURATION)
    assert attrs[semconv.RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"


def test_span_with_previous_attribute_names_is_priced(rig: Rig) -> None:
    old = {"gen_ai.system": "anthropic", semconv.OPERATION_NAME: "chat",
           semconv.REQUEST_MODEL: "claude-3-5-sonnet-latest"}
    with rig.tracer().start_as_current_span("chat", attributes=old) as span:
        span.set_attribute("gen_ai.usage.prompt_tokens", 3000)
        span.set_attribute("gen_ai.usage.completion_tokens", 100)
        span.set_attribute("gen_ai.usage.cache_creation.input_tokens", 2000)
    usage = Usage(input_tokens=3000, output_tokens=100, cache_write_tokens=2000)
    expected = float(calc_price(usage, "claude-3-5-sonnet-latest", provider_id="anthropic").total_price)
    assert rig.total(semconv.COST) == pytest.approx(expected, rel=1e-9)
    assert {a[semconv.PROVIDER_NAME] for a, _ in rig.points(semconv.COST)} == {"anthropic"}
    assert rig.total(semconv.COST, **{semconv.TOKEN_TYPE: "cache_write"}) > 0


def test_span_with_openllmetry_cache_names_is_priced(rig: Rig) -> None:
    attrs = {"gen_ai.system": "anthropic", semconv.REQUEST_MODEL: "claude-3-5-sonnet-latest",
             semconv.SERVER_ADDRESS: "api.anthropic.com", semconv.SERVER_PORT: 443}
    with rig.tracer().start_as_current_span("anthropic.chat", attributes=attrs) as span:  # no operation name
        span.set_attribute("gen_ai.usage.prompt_tokens", 5000)
        span.set_attribute("gen_ai.usage.completion_tokens", 200)
        span.set_attribute("gen_ai.usage.cache_read_input_tokens", 3000)
        span.set_attribute("gen_ai.usage.cache_creation_input_tokens", 1000)
    usage = Usage(input_tokens=5000, output_tokens=200, cache_read_tokens=3000, cache_write_tokens=1000)
    expected = float(calc_price(usage, "claude-3-5-sonnet-latest", provider_id="anthropic").total_price)
    assert rig.total(semconv.COST) == pytest.approx(expected, rel=1e-9)
    assert {a[semconv.TOKEN_TYPE] for a, _ in rig.points(semconv.COST)} == {
        "input", "output", "cache_read", "cache_write"}
    assert rig.total(semconv.CACHE_SAVINGS) > 0
    ((attrs_seen, _),) = rig.points(semconv.OPERATION_DURATION)
    assert attrs_seen[semconv.OPERATION_NAME] == "chat" and attrs_seen[semconv.SERVER_PORT] == 443


def test_metric_kinds_and_units(rig: Rig) -> None:
    ai.record_call("openai", "gpt-4o", duration_s=0.1, input_tokens=100, output_tokens=10, cache_read_tokens=50)
    ai.record_call("openai", "house-model", input_tokens=1, output_tokens=1)
    found = {m.name: m for rm in rig.reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    expected = {semconv.TOKEN_USAGE: ("{token}", None), semconv.OPERATION_DURATION: ("s", None),
                semconv.COST: ("{USD}", True), semconv.CACHE_SAVINGS: ("{USD}", True),
                semconv.UNPRICED_CALLS: ("{call}", True)}
    for name, (unit, monotonic) in expected.items():
        assert found[name].unit == unit, name
        if monotonic:
            assert found[name].data.is_monotonic, name


def test_non_genai_and_agent_spans_are_ignored(rig: Rig) -> None:
    tracer = rig.tracer()
    with tracer.start_as_current_span("GET /"):
        pass
    with tracer.start_as_current_span("invoke_agent", attributes={**CHAT, semconv.OPERATION_NAME: "invoke_agent",
                                                                  semconv.USAGE_INPUT_TOKENS: 10**6}):
        pass
    assert rig.points(semconv.COST) == [] and rig.points(semconv.TOKEN_USAGE) == []


def test_failed_span_records_error_type(rig: Rig) -> None:
    with pytest.raises(ValueError), rig.tracer().start_as_current_span("chat", attributes=CHAT):
        raise ValueError("bad request")
    ((attrs, _),) = rig.points(semconv.OPERATION_DURATION)
    assert attrs[semconv.ERROR_TYPE] == "_OTHER"
    assert rig.points(semconv.COST) == [] and rig.points(semconv.UNPRICED_CALLS) == []


def test_instrumentation_that_records_token_metrics_is_not_double_counted(rig: Rig) -> None:
    scope = "vendor.instrumentation.llm"
    meter = rig.meter_provider.get_meter(scope)
    own_tokens = meter.create_histogram(semconv.TOKEN_USAGE, unit="{token}")
    with rig.tracer(scope).start_as_current_span("chat", attributes=CHAT) as span:
        span.set_attribute(semconv.USAGE_INPUT_TOKENS, 100)
        span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 10)
        own_tokens.record(100, {**CHAT, semconv.TOKEN_TYPE: "input"})
    token_scopes = {a["_scope"] for a, _ in rig.points(semconv.TOKEN_USAGE)}
    assert token_scopes == {scope}
    assert rig.points(semconv.OPERATION_DURATION) == []
    assert rig.total(semconv.COST) == pytest.approx(genai_prices("gpt-4o-mini", 100, 10))


def test_instrumented_call_inside_llm_call_is_counted_once(rig: Rig) -> None:
    with ai.llm_call("openai", "gpt-4o-mini") as call:
        with rig.tracer().start_as_current_span("chat gpt-4o-mini", attributes=CHAT) as span:
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, 100)
            span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 10)
        call.record_usage(100, 10)
    assert rig.total(semconv.COST) == pytest.approx(genai_prices("gpt-4o-mini", 100, 10))
    assert rig.total(semconv.UNPRICED_CALLS) == 0
    assert [c for _, (_, c) in rig.points(semconv.OPERATION_DURATION)] == [1]
    assert len(rig.spans.get_finished_spans()) == 2  # ours and the instrumentation's, nested


def _span_with_cost(rig: Rig, model: str = "gpt-4o-mini", tokens: bool = True, **cost: Any) -> None:
    with rig.tracer().start_as_current_span("chat", attributes={**CHAT, semconv.REQUEST_MODEL: model}) as span:
        if tokens:
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, 1000)
            span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 100)
        for key, value in cost.items():
            span.set_attribute(f"gen_ai.usage.cost.{key}", value)


def test_provider_reported_cost_on_a_span_wins_over_the_price_list(rig: Rig) -> None:
    _span_with_cost(rig, amount=0.5, currency="USD", source="provider")
    points = rig.points(semconv.COST)
    assert {a[semconv.COST_SOURCE] for a, _ in points} == {"provider"}
    assert rig.total(semconv.COST) == pytest.approx(0.5)
    # split by token type in the proportions of the local price
    local = genai_prices("gpt-4o-mini", 1000, 0) / genai_prices("gpt-4o-mini", 1000, 100)
    assert rig.total(semconv.COST, **{semconv.TOKEN_TYPE: "input"}) == pytest.approx(0.5 * local)
    assert {a[semconv.TOKEN_TYPE]: v for a, v in rig.points(semconv.TOKEN_USAGE)} == {
        "input": (1000, 1), "output": (100, 1)}  # tokens are still recorded


def test_provider_cost_prices_a_model_with_no_price_and_a_call_with_no_tokens(rig: Rig) -> None:
    _span_with_cost(rig, model="house-model-7b", amount=0.25, source="provider")  # no currency: USD
    _span_with_cost(rig, model="gpt-4o-mini", tokens=False, amount=0.125, currency="usd", source="provider")
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "house-model-7b"}) == pytest.approx(0.25)
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "gpt-4o-mini"}) == pytest.approx(0.125)
    assert rig.points(semconv.UNPRICED_CALLS) == []
    assert all(a[semconv.COST_SOURCE] == "provider" for a, _ in rig.points(semconv.COST))
    tokens = [a[semconv.TOKEN_TYPE] for a, _ in rig.points(semconv.TOKEN_USAGE)]
    assert sorted(tokens) == ["input", "output"]  # only the call that reported tokens


@pytest.mark.parametrize("cost", [
    {"amount": 9.0, "source": "local"},  # another component's own estimate: the distro prices the call
    {"amount": 9.0},  # no provenance
    {"amount": 9.0, "currency": "EUR", "source": "provider"},  # not USD
    {"amount": -1.0, "source": "provider"},
    {"amount": "9", "source": "provider"},
])
def test_other_cost_attributes_leave_the_local_price(rig: Rig, cost: dict[str, Any],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        _span_with_cost(rig, **cost)
        _span_with_cost(rig, **cost)
    assert rig.total(semconv.COST) == pytest.approx(2 * genai_prices("gpt-4o-mini", 1000, 100), rel=1e-9)
    assert {a[semconv.COST_SOURCE] for a, _ in rig.points(semconv.COST)} == {"local"}
    currency_lines = [r for r in caplog.records if "provider-reported cost in EUR" in r.getMessage()]
    assert len(currency_lines) == (1 if cost.get("currency") == "EUR" else 0)


def test_provider_cost_on_a_sampled_out_span_is_counted() -> None:
    rig = make_rig(ALWAYS_OFF)
    try:
        _span_with_cost(rig, amount=0.5, currency="USD", source="provider")
        assert rig.spans.get_finished_spans() == ()
        assert rig.total(semconv.COST, **{semconv.COST_SOURCE: "provider"}) == pytest.approx(0.5)
    finally:
        ai.uninstall()


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, ParentBased(TraceIdRatioBased(0.0))])
def test_sampled_out_calls_are_counted_and_not_exported(sampler: Any) -> None:
    rig = make_rig(sampler)
    try:
        tracer = rig.tracer()
        for _ in range(3):
            with tracer.start_as_current_span("chat", attributes=CHAT) as span:
                assert span.is_recording() and not span.get_span_context().trace_flags.sampled
                span.set_attribute(semconv.USAGE_INPUT_TOKENS, 1000)
                span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 100)
                with tracer.start_as_current_span("http POST") as child:
                    assert not child.is_recording()  # only the GenAI span is recorded
            with tracer.start_as_current_span("GET /items") as plain:
                assert not plain.is_recording()
        assert rig.spans.get_finished_spans() == ()
        assert rig.total(semconv.COST) == pytest.approx(3 * genai_prices("gpt-4o-mini", 1000, 100))
        assert rig.total(semconv.UNPRICED_CALLS) == 0
        assert "GenAIRecordOnly" in rig.tracer_provider.sampler.get_description()
    finally:
        ai.uninstall()


def test_baggage_keys_are_copied_onto_cost_metrics_bounded() -> None:
    rig = make_rig(OTEL_DISTRO_AI_COST_ATTRIBUTES="tenant,feature", OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES="2")
    try:
        tracer = rig.tracer()
        for tenant in ("acme", "globex", "initech", "umbrella"):
            ctx = baggage.set_baggage("feature", "search", baggage.set_baggage("tenant", tenant))
            ctx = baggage.set_baggage("user", "u-1", ctx)
            token = context.attach(ctx)
            try:
                with tracer.start_as_current_span("chat", attributes=CHAT) as span:  # span-derived
                    span.set_attribute(semconv.USAGE_INPUT_TOKENS, 100)
                    span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 10)
                with ai.llm_call("openai", "gpt-4o-mini") as call:  # API
                    call.record_usage(100, 10)
            finally:
                context.detach(token)
        points = rig.points(semconv.COST)
        assert {a["tenant"] for a, _ in points} == {"acme", "globex", "other"}
        assert {a["feature"] for a, _ in points} == {"search"}
        assert all("user" not in a for a, _ in points)
        one_call = genai_prices("gpt-4o-mini", 100, 10)
        assert rig.total(semconv.COST, tenant="other") == pytest.approx(4 * one_call)
        assert rig.total(semconv.COST, tenant="acme") == pytest.approx(2 * one_call)
        assert all("tenant" not in a for a, _ in rig.points(semconv.TOKEN_USAGE))
    finally:
        ai.uninstall()


def test_span_metrics_can_be_turned_off() -> None:
    rig = make_rig(OTEL_DISTRO_AI_SPAN_METRICS="false")
    try:
        with rig.tracer().start_as_current_span("chat", attributes=CHAT) as span:
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, 100)
        assert rig.points(semconv.COST) == [] and rig.runtime.processor is None
    finally:
        ai.uninstall()


@pytest.mark.parametrize("span_metrics", ["true", "false"])
def test_the_content_policy_applies_to_spans_with_span_metrics_on_or_off(span_metrics: str) -> None:
    rig = make_rig(OTEL_DISTRO_AI_SPAN_METRICS=span_metrics)
    try:
        with rig.tracer().start_as_current_span("chat", attributes={**CHAT, "gen_ai.input.messages": "a prompt"}):
            pass
        (span,) = rig.spans.get_finished_spans()
        assert "gen_ai.input.messages" not in span.attributes
        assert span.attributes["otel_distro.gen_ai.content"] == "removed"
        assert (rig.runtime.processor is None) == (span_metrics == "false")
    finally:
        ai.uninstall()


def test_override_file_prices_the_api(tmp_path: Any) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text("- {provider: openai, model: gpt-4o, input: 100, output: 1000}\n")
    make_rig(OTEL_DISTRO_AI_PRICES_FILE=str(prices))
    try:
        assert ai.record_call("openai", "gpt-4o", input_tokens=1000, output_tokens=1000) == pytest.approx(1.1)
        assert ai.estimate_cost("openai", "gpt-4o", 1000, 0).total == pytest.approx(0.1)
    finally:
        ai.uninstall()


# ------------------------------------------------------------ deferred recording

def test_calls_are_fed_to_the_sdk_when_a_reader_collects(rig: Rig) -> None:
    ai.record_call("openai", "gpt-4o", duration_s=0.5, input_tokens=10, output_tokens=1)
    assert len(rig.runtime.meters._pending) == 1
    assert rig.total(semconv.UNPRICED_CALLS) == 0 and rig.points(semconv.COST)
    assert len(rig.runtime.meters._pending) == 0
    names = {m.name for rm in rig.reader.get_metrics_data().resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    assert "otel_distro.ai.pending" not in names  # the flushing hook reports nothing itself


def test_queue_is_bounded_without_a_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(meters_module, "_MAX_PENDING", 10)
    recorder = meters_module.GenAIMeters(MeterProvider(), ai.PriceBook())
    for _ in range(50):
        recorder.record("openai", "gpt-4o", input_tokens=1, output_tokens=1)
    assert len(recorder._pending) <= 10


def test_a_broken_measurement_is_reported_once_and_swallowed(production_errors: None, rig: Rig,
                                                             caplog: pytest.LogCaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("exporter on fire")

    monkeypatch.setattr(rig.runtime.meters, "_emit", broken)
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        for _ in range(3):
            with ai.llm_call("openai", "gpt-4o") as call:
                call.record_usage(1, 1)
        rig.reader.get_metrics_data()
    assert sum("recording a GenAI call failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("under_a_request", [False, True])
def test_a_span_that_says_it_is_a_genai_call_only_after_it_started_is_priced(rig: Rig, under_a_request: bool) -> None:
    def chat() -> None:
        with rig.tracer().start_as_current_span("chat late") as span:
            span.set_attribute(semconv.OPERATION_NAME, "chat")
            span.set_attribute(semconv.PROVIDER_NAME, "openai")
            span.set_attribute(semconv.REQUEST_MODEL, "gpt-4o-mini")
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, 1000)
            span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 500)

    if under_a_request:
        with rig.tracer().start_as_current_span("GET /emit", kind=SpanKind.SERVER):
            chat()
    else:
        chat()
    assert rig.total(semconv.COST) == pytest.approx(genai_prices("gpt-4o-mini", 1000, 500), rel=1e-9)
