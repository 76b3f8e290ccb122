"""Cost on spans, in process with the SDK: nested spans of one call counted once, sums on the local root and on
every enclosing agent run, unpriced reasons, agent and tool metrics."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from otel_distro import ai
from tests.test_ai_metrics import Rig, rig

__all__ = ["rig"]  # meters, span processor and in-memory exporters on fresh providers

CHAT = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
USAGE = {"gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200}
PRICE = float(calc_price(Usage(input_tokens=1000, output_tokens=200), "gpt-4o-mini", provider_id="openai").total_price)


def finished(rig: Rig, name: str) -> Any:
    (span,) = [s for s in rig.spans.get_finished_spans() if s.name == name]
    return span


def call(tracer: Any, name: str = "chat", usage: dict[str, int] | None = None, **extra: Any) -> None:
    with tracer.start_as_current_span(name, attributes={**CHAT, **extra}) as span:
        for key, value in (usage or {}).items():
            span.set_attribute(key, value)


def test_nested_spans_of_one_call_are_priced_once_by_the_innermost_with_usage(rig: Rig) -> None:
    outer, inner = rig.tracer("framework"), rig.tracer("client.sdk")
    with outer.start_as_current_span("outer", attributes=CHAT) as span:
        call(inner, "inner", USAGE)
        span.set_attributes(USAGE)  # the framework reports the same usage again
    assert rig.total("gen_ai.client.cost") == pytest.approx(PRICE, rel=1e-9)
    for name in ("outer", "inner"):
        assert finished(rig, name).attributes["gen_ai.usage.cost.amount"] == pytest.approx(PRICE, rel=1e-9)


def test_an_inner_span_without_usage_leaves_the_call_to_the_span_around_it(rig: Rig) -> None:
    with rig.tracer("framework").start_as_current_span("outer", attributes={**CHAT, **USAGE}):
        call(rig.tracer("client.sdk"), "inner")
    assert rig.total("gen_ai.client.cost") == pytest.approx(PRICE, rel=1e-9)
    assert rig.points("gen_ai.client.unpriced_calls") == []


def test_a_call_no_span_reports_usage_for_is_unpriced_once_with_its_reason(rig: Rig) -> None:
    with rig.tracer("framework").start_as_current_span("outer", attributes={**CHAT, "gen_ai.request.stream": True}):
        call(rig.tracer("client.sdk"), "inner")
    (point,) = rig.points("gen_ai.client.unpriced_calls")
    assert point[0]["reason"] == "stream_without_usage" and point[1] == 1
    assert finished(rig, "outer").attributes["otel_distro.gen_ai.cost.unpriced_reason"] == "stream_without_usage"


def test_root_and_agent_spans_carry_the_sum_of_the_calls_under_them(rig: Rig) -> None:
    tracer = rig.tracer()
    with tracer.start_as_current_span("POST /plan"):
        with tracer.start_as_current_span("invoke_agent planner", attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}):
            call(tracer, "chat 1", USAGE)
            with tracer.start_as_current_span("invoke_agent researcher", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "researcher"}):
                call(tracer, "chat 2", USAGE)
                with tracer.start_as_current_span("execute_tool search", attributes={
                        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}):
                    call(tracer, "chat 3", USAGE, **{"gen_ai.request.model": "house-model"})
        call(tracer, "chat 4", USAGE)
    sums = {name: (finished(rig, name).attributes["otel_distro.gen_ai.cost.total"],
                   finished(rig, name).attributes["otel_distro.gen_ai.calls"],
                   finished(rig, name).attributes["otel_distro.gen_ai.unpriced_calls"])
            for name in ("POST /plan", "invoke_agent planner", "invoke_agent researcher")}
    assert sums == {"POST /plan": (pytest.approx(3 * PRICE), 4, 1),
                    "invoke_agent planner": (pytest.approx(2 * PRICE), 3, 1),
                    "invoke_agent researcher": (pytest.approx(PRICE), 2, 1)}
    by_agent = {a.get("gen_ai.agent.name"): v for a, v in rig.points("gen_ai.client.cost")
                if a["gen_ai.token.type"] == "input"}
    assert set(by_agent) == {"planner", "researcher", None}  # the nearest agent; chat 4 ran under none
    runs = {a["gen_ai.agent.name"]: v[1] for a, v in rig.points("gen_ai.agent.run.duration")}
    assert runs == {"planner": 1, "researcher": 1}
    tokens = {(a["gen_ai.agent.name"], a["gen_ai.token.type"]): v for a, v in rig.points("gen_ai.agent.token.usage")}
    assert tokens[("planner", "input")] == 3000 and tokens[("researcher", "output")] == 400
    (tool,) = rig.points("gen_ai.tool.call.duration")
    assert tool[0]["gen_ai.tool.name"] == "search" and tool[1][1] == 1


def test_a_failed_agent_run_and_tool_call_carry_their_error(rig: Rig) -> None:
    tracer = rig.tracer()
    with pytest.raises(TimeoutError), tracer.start_as_current_span("invoke_agent planner", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}), \
            tracer.start_as_current_span("execute_tool search", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}):
        raise TimeoutError("slow")
    (run,) = rig.points("gen_ai.agent.run.duration")
    (tool,) = rig.points("gen_ai.tool.call.duration")
    assert run[0]["error.type"] == "_OTHER" and tool[0]["error.type"] == "_OTHER"


def test_llm_call_stream_records_chunk_timing_and_a_missing_usage(rig: Rig) -> None:
    with ai.llm_call("openai", "gpt-4o-mini") as streamed:
        for _ in range(4):
            streamed.chunk_received()
    (first,) = rig.points("gen_ai.client.operation.time_to_first_chunk")
    (gaps,) = rig.points("gen_ai.client.operation.time_per_output_chunk")
    assert first[1][1] == 1 and gaps[1][1] == 3
    (unpriced,) = rig.points("gen_ai.client.unpriced_calls")
    assert unpriced[0]["reason"] == "stream_without_usage"
    assert finished(rig, "chat gpt-4o-mini").attributes["otel_distro.gen_ai.cost.unpriced_reason"] == \
        "stream_without_usage"


def test_async_openai_stream_is_asked_for_usage_and_the_caller_never_sees_it(rig: Rig) -> None:
    import asyncio

    from openai import AsyncOpenAI
    from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

    from examples.genai_app import llm_server
    from otel_distro.ai import stream_usage

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=rig.tracer_provider, meter_provider=rig.meter_provider)
    stream_usage.install()
    server = llm_server.start()
    try:
        async def stream() -> list[Any]:
            client = AsyncOpenAI(base_url=server.base_url, api_key="local", max_retries=0)
            chunks = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three"}], stream=True)
            return [chunk async for chunk in chunks]

        chunks = asyncio.run(stream())
    finally:
        server.stop()
        stream_usage.uninstall()
        instrumentor.uninstrument()
    assert chunks and all(c.choices for c in chunks)  # the usage chunk it did not ask for is not passed on
    span = finished(rig, "chat gpt-4o-mini")
    assert span.attributes["gen_ai.usage.input_tokens"] == llm_server.count_prompt_tokens(
        [{"content": "one two three"}])
    assert span.attributes["gen_ai.usage.cost.amount"] > 0


def test_ended_spans_and_their_records_are_freed_without_the_garbage_collector(rig: Rig) -> None:
    tracer = rig.tracer()

    def request() -> None:
        with tracer.start_as_current_span("GET /plan"):
            with tracer.start_as_current_span("invoke_agent planner", attributes={
                    "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"}):
                call(tracer, "chat", USAGE)
            with tracer.start_as_current_span("ordinary work"):
                pass

    request()  # the first of each kind sets up its metric streams
    gc.collect()
    gc.disable()
    try:
        for _ in range(50):
            request()
        left_for_the_collector = gc.collect()
    finally:
        gc.enable()
    assert left_for_the_collector == 0
    roots = [s for s in rig.spans.get_finished_spans() if s.name == "GET /plan"]
    assert [s.attributes["otel_distro.gen_ai.calls"] for s in roots] == [1] * 51
