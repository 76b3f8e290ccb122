"""End to end: an openai-agents run with two tools (opentelemetry-instrumentation-genai-openai-agents and
-openai, under opentelemetry-instrument) against the local OpenAI-compatible server: agent-run and tool-call
metrics by name, the run's cost on its span and on the cost metric (by agent), equal to genai-prices'."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from examples.genai_app import llm_server
from tests.conftest import BIN, ROOT, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.test_ai_openai import OWN_SCOPE, latest, llm, wait_cost

pytestmark = pytest.mark.integration
__all__ = ["llm"]  # the local LLM server fixture

AGENT = "travel-assistant"


def run_agent(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> dict[str, Any]:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="agent-app", OPENAI_BASE_URL=llm.base_url,
                        OPENAI_API_KEY="local-test-key")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "examples.genai_app.agent"],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def span_named(receiver: OtlpTestReceiver, prefix: str, count: int) -> list[Any]:
    return receiver.wait_for(lambda: (lambda found: found if len(found) >= count else None)(
        [s for s in receiver.spans() if s.name.startswith(prefix)]), what=f"{count} '{prefix}' spans")


def test_agent_run_with_two_tools(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    assert run_agent(receiver, llm)["output"] == llm_server.REPLY
    chats = span_named(receiver, "chat gpt-4o-mini", 2)
    (agent_span,) = span_named(receiver, f"invoke_agent {AGENT}", 1)
    expected = 0.0
    for chat in chats:  # one call asks for the tools, one answers with their results
        usage = Usage(input_tokens=chat.attributes["gen_ai.usage.input_tokens"],
                      output_tokens=chat.attributes["gen_ai.usage.output_tokens"])
        price = float(calc_price(usage, "gpt-4o-mini", provider_id="openai").total_price)
        assert chat.attributes["gen_ai.usage.cost.amount"] == pytest.approx(price, rel=1e-9)
        expected += price
    assert len(chats) == 2 and all(c.trace_id == agent_span.trace_id for c in chats)
    assert agent_span.attributes["otel_distro.gen_ai.cost.total"] == pytest.approx(expected, rel=1e-9)
    assert agent_span.attributes["otel_distro.gen_ai.calls"] == 2
    # the cost metric carries the agent
    points = wait_cost(receiver)
    assert {p.attributes.get("gen_ai.agent.name") for p in points} == {AGENT}
    assert sum(p.value for p in points) == pytest.approx(expected, rel=1e-9)
    # runs, duration, outcome by agent; tool calls by tool
    runs = receiver.wait_for(lambda: latest(receiver, "gen_ai.agent.run.duration", OWN_SCOPE), what="agent runs")
    assert [(p.attributes, p.count) for p in runs] == [({"gen_ai.agent.name": AGENT}, 1)]
    tools = latest(receiver, "gen_ai.tool.call.duration", OWN_SCOPE)
    assert sorted((p.attributes["gen_ai.tool.name"], p.count) for p in tools) == [
        ("get_local_time", 1), ("get_weather", 1)]
    assert all("error.type" not in p.attributes for p in tools)
    tokens = {p.attributes["gen_ai.token.type"]: p.value
              for p in latest(receiver, "gen_ai.agent.token.usage", OWN_SCOPE)}
    assert tokens == {"input": sum(c.attributes["gen_ai.usage.input_tokens"] for c in chats),
                      "output": sum(c.attributes["gen_ai.usage.output_tokens"] for c in chats)}
