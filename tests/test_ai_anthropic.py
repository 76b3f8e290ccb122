"""End to end: the real anthropic client under opentelemetry-instrument (opentelemetry-instrumentation-genai-anthropic
installed, and the client's own OpenTelemetry spans on, as they are by default) against the local
Anthropic-compatible server. Each call makes two nested GenAI spans; it must be priced once, like genai-prices."""

from __future__ import annotations

from typing import Any

import pytest
from genai_prices import Usage, calc_price

from examples.genai_app import llm_server
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.test_ai_openai import OWN_SCOPE, latest, llm, run_client, wait_cost

pytestmark = pytest.mark.integration
__all__ = ["llm"]  # the local LLM server fixture

MODEL = "claude-3-5-haiku-latest"


def genai_prices_cost(call: dict[str, Any]) -> float:
    usage = Usage(input_tokens=call["prompt_tokens"], output_tokens=call["completion_tokens"],
                  cache_read_tokens=call["cached_tokens"], cache_write_tokens=call["cache_write_tokens"])
    return float(calc_price(usage, call["model"], provider_id="anthropic").total_price)


def chat_spans(receiver: OtlpTestReceiver, count: int) -> list[Any]:
    return receiver.wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        [s for s in receiver.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]),
        what=f"{count} chat spans")


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
def test_anthropic_calls_are_priced_once_like_genai_prices(receiver: OtlpTestReceiver, llm: llm_server.LLMServer,
                                                           stream: bool) -> None:
    args = ["--provider", "anthropic", "--model", MODEL, "--calls", "2",
            "--question", "Name three signals cached=4 of OpenTelemetry"] + (["--stream"] if stream else [])
    calls, _ = run_client(receiver, llm, *args)
    assert all(c["cached_tokens"] == 4 and c["completion_tokens"] for c in calls)
    expected = sum(genai_prices_cost(c) for c in calls)
    points = wait_cost(receiver)
    assert sum(p.value for p in points) == pytest.approx(expected, rel=1e-9)
    assert {p.attributes["gen_ai.token.type"] for p in points} == {"input", "output", "cache_read"}
    # the client's own span sits inside the instrumentation's: two spans per call, both carry the call's cost
    spans = chat_spans(receiver, 4)
    assert len(spans) == 4 and {s.scope for s in spans} == {"com.anthropic.sdk.python",
                                                            "opentelemetry.instrumentation.genai.anthropic"}
    per_call = genai_prices_cost(calls[0])
    for span in spans:
        assert span.attributes["gen_ai.usage.cost.amount"] == pytest.approx(per_call, rel=1e-9)
        assert span.attributes["gen_ai.usage.cost.currency"] == "USD"
    # the instrumentation records the token histogram itself: the distro does not record it a second time
    assert OWN_SCOPE not in {m.scope for m in receiver.metric("gen_ai.client.token.usage")}
    # every cost point carries an exemplar pointing at one of the calls' traces
    traces = {s.trace_id for s in spans}
    assert all(p.exemplar_trace_ids and set(p.exemplar_trace_ids) <= traces for p in points)


def test_anthropic_unknown_model_is_unpriced_once(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    run_client(receiver, llm, "--provider", "anthropic", "--model", "claude-house-1")
    points = receiver.wait_for(lambda: latest(receiver, "gen_ai.client.unpriced_calls", OWN_SCOPE),
                               what="unpriced calls")
    assert [(p.attributes["reason"], p.value) for p in points] == [("unknown_model", 1)]
    spans = chat_spans(receiver, 2)
    assert {s.attributes.get("otel_distro.gen_ai.cost.unpriced_reason") for s in spans} == {"unknown_model"}
