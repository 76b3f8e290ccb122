"""End to end: the real openai client and opentelemetry-instrumentation-genai-openai, under
opentelemetry-instrument, against the local OpenAI-compatible server; metrics read back
from the test OTLP receiver. Costs must equal genai-prices' for the usage the API reported."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, calc_price

from examples.genai_app import client, llm_server
from tests.conftest import BIN, ROOT, free_port, http_get, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver

pytestmark = pytest.mark.integration

OWN_SCOPE = "otel_distro.ai"


@pytest.fixture
def llm() -> Iterator[llm_server.LLMServer]:
    server = llm_server.start()
    yield server
    server.stop()


def run_client(receiver: OtlpTestReceiver, llm: llm_server.LLMServer, *args: str,
               **env: str) -> tuple[list[dict[str, Any]], str]:
    environment = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="genai-app", OPENAI_BASE_URL=llm.base_url,
                                OPENAI_API_KEY="local-test-key", ANTHROPIC_BASE_URL=llm.root_url,
                                ANTHROPIC_API_KEY="local-test-key", **env)
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-m",
                           "examples.genai_app.client", *args], env=environment, cwd=ROOT,
                          capture_output=True, text=True, timeout=90)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert lines, f"client printed nothing (exit {done.returncode}):\n{done.stderr}"
    return lines, done.stderr


def latest(receiver: OtlpTestReceiver, name: str, scope: str | None = None) -> list[Any]:
    """The points of the last export of a metric (cumulative: the totals)."""
    found = [m for m in receiver.metric(name) if scope is None or m.scope == scope]
    return found[-1].points if found else []


def wait_cost(receiver: OtlpTestReceiver) -> list[Any]:
    return receiver.wait_for(lambda: latest(receiver, "gen_ai.client.cost", OWN_SCOPE), what="cost metric")


def expected_cost(calls: list[dict[str, Any]]) -> float:
    total = 0.0
    for call in calls:
        usage = Usage(input_tokens=call["prompt_tokens"], output_tokens=call["completion_tokens"],
                      cache_read_tokens=call["cached_tokens"])
        total += float(calc_price(usage, call["model"], provider_id="openai").total_price)
    return total


@pytest.mark.parametrize("stream", [False, True], ids=["non-streaming", "streaming"])
def test_openai_calls_are_priced_like_genai_prices(receiver: OtlpTestReceiver, llm: llm_server.LLMServer,
                                                   stream: bool) -> None:
    args = ["--calls", "3", "--question", "Name three signals of OpenTelemetry"] + (["--stream"] if stream else [])
    calls, _ = run_client(receiver, llm, *args)
    assert all(c["prompt_tokens"] and c["completion_tokens"] for c in calls)
    points = wait_cost(receiver)
    assert sum(p.value for p in points) == pytest.approx(expected_cost(calls), rel=1e-9)
    assert {p.attributes["gen_ai.token.type"] for p in points} == {"input", "output"}
    for p in points:
        assert p.attributes["gen_ai.provider.name"] == "openai"
        assert p.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        assert p.attributes["gen_ai.operation.name"] == "chat"
        assert p.attributes["cost.source"] == "local"
    # the instrumentation records the semconv histograms itself: they are not recorded twice
    token_scopes = {m.scope for m in receiver.metric("gen_ai.client.token.usage")}
    assert OWN_SCOPE not in token_scopes
    usage = latest(receiver, "gen_ai.client.token.usage")
    by_type = {p.attributes["gen_ai.token.type"]: p for p in usage}
    assert by_type["input"].sum == sum(c["prompt_tokens"] for c in calls) and by_type["input"].count == 3
    assert by_type["output"].sum == sum(c["completion_tokens"] for c in calls)
    genai_spans = receiver.wait_for(lambda: (lambda found: found if len(found) == 3 else None)(
        [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"]), what="3 chat spans")
    assert sorted(s.attributes["gen_ai.usage.cost.amount"] for s in genai_spans) == pytest.approx(
        sorted(expected_cost([c]) for c in calls), rel=1e-9)


def test_sampled_out_calls_are_still_priced(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    calls, _ = run_client(receiver, llm, "--calls", "2", OTEL_TRACES_SAMPLER="always_off")
    points = wait_cost(receiver)
    assert sum(p.value for p in points) == pytest.approx(expected_cost(calls), rel=1e-9)
    assert [s for s in receiver.spans() if s.name.startswith("chat")] == []


def test_calls_wrapped_in_llm_call_are_counted_once(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    calls, _ = run_client(receiver, llm, "--calls", "2", "--api")
    expected = expected_cost(calls)
    assert sum(c["api_cost"] for c in calls) == pytest.approx(expected, rel=1e-9)
    points = wait_cost(receiver)
    assert sum(p.value for p in points) == pytest.approx(expected, rel=1e-9)


def test_unknown_model_is_counted_as_unpriced(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    run_client(receiver, llm, "--calls", "2", "--model", "house-model-7b")
    points = receiver.wait_for(lambda: latest(receiver, "gen_ai.client.unpriced_calls", OWN_SCOPE),
                               what="unpriced calls")
    assert [(p.attributes["gen_ai.request.model"], p.value) for p in points] == [("house-model-7b", 2)]
    assert latest(receiver, "gen_ai.client.cost", OWN_SCOPE) == []
    # one warning for the model, through logging (here: bridged to OTLP logs)
    warnings = receiver.wait_for(lambda: [r for r in receiver.logs()
                                          if "no price for LLM model openai/house-model-7b" in str(r.body)],
                                 what="the unpriced-model warning")
    assert len(warnings) == 1 and warnings[0].severity_text == "WARN"


def test_price_file_and_baggage_attribution(receiver: OtlpTestReceiver, llm: llm_server.LLMServer,
                                            tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[prices]]\nprovider = "openai"\nmodel = "house-*"\ninput = 1.0\noutput = 2.0\n'
                      '[[prices]]\nprovider = "openai"\nmodel = "broken"\ninput = "cheap"\noutput = 1\n')
    calls, stderr = run_client(receiver, llm, "--calls", "2", "--model", "house-model-7b", "--tenant", "acme",
                               OTEL_DISTRO_AI_PRICES_FILE=str(prices), OTEL_DISTRO_AI_COST_ATTRIBUTES="tenant")
    points = wait_cost(receiver)
    expected = sum(c["prompt_tokens"] * 1.0 / 1e6 + c["completion_tokens"] * 2.0 / 1e6 for c in calls)
    assert sum(p.value for p in points) == pytest.approx(expected, rel=1e-9)
    assert {p.attributes.get("tenant") for p in points} == {"acme"}
    problem = [line for line in stderr.splitlines() if "OTEL_DISTRO_AI_PRICES_FILE" in line]
    assert len(problem) == 1 and "entry 2 (openai/broken)" in problem[0]


def test_failed_call_records_the_error_and_no_cost(receiver: OtlpTestReceiver, llm: llm_server.LLMServer) -> None:
    calls, _ = run_client(receiver, llm, "--model", "fail-model")
    assert calls == [{"model": "fail-model", "error": "InternalServerError"}]
    durations = receiver.wait_for(lambda: latest(receiver, "gen_ai.client.operation.duration"),
                                  what="duration")
    (point,) = durations
    assert "InternalServerError" in point.attributes["error.type"]  # as the instrumentation names it
    assert latest(receiver, "gen_ai.client.cost", OWN_SCOPE) == []
    assert latest(receiver, "gen_ai.client.unpriced_calls", OWN_SCOPE) == []


def test_fastapi_ask_route_prices_the_call(receiver: OtlpTestReceiver, llm: llm_server.LLMServer,
                                           start_service: Any) -> None:
    port = free_port()
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop", OPENAI_BASE_URL=llm.base_url,
                        OPENAI_API_KEY="local-test-key")
    service = start_service([str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "uvicorn",
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    assert http_get(base + "/ask?question=hello%20there", method="POST") == 200
    points = wait_cost(receiver)
    # "hello there" -> 2 words + 3 per message; the reply has 22 words
    usage = Usage(input_tokens=5, output_tokens=len(llm_server.REPLY.split()))
    expected = float(calc_price(usage, "gpt-4o-mini", provider_id="openai").total_price)
    assert sum(p.value for p in points) == pytest.approx(expected, rel=1e-9)
    spans = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"],
                              what="GenAI span")
    (server_span, *_) = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "POST /ask"],
                                          what="server span")  # exported in its own batch, maybe later
    assert spans[0].trace_id == server_span.trace_id
    # the request's span (the local root) carries the summed cost of the calls under it
    assert server_span.attributes["otel_distro.gen_ai.cost.total"] == pytest.approx(expected, rel=1e-9)
    assert server_span.attributes["otel_distro.gen_ai.calls"] == 1
    assert server_span.attributes["otel_distro.gen_ai.unpriced_calls"] == 0


def test_streamed_call_is_asked_for_its_usage_and_priced(receiver: OtlpTestReceiver,
                                                         llm: llm_server.LLMServer) -> None:
    question = "Name three signals of OpenTelemetry"
    calls, _ = run_client(receiver, llm, "--stream", "--no-usage", "--calls", "2", "--question", question)
    # the caller set no stream_options: it sees no usage chunk (nor any chunk without choices)
    assert [(c["prompt_tokens"], c["chunks_without_choices"]) for c in calls] == [(None, 0), (None, 0)]
    assert all(c["text"] == llm_server.REPLY for c in calls)
    prompt = llm_server.count_prompt_tokens([{"content": client.SYSTEM}, {"content": question}])
    expected = [{"model": "gpt-4o-mini", "prompt_tokens": prompt, "completion_tokens": len(llm_server.REPLY.split()),
                 "cached_tokens": 0}] * 2
    points = wait_cost(receiver)
    assert sum(p.value for p in points) == pytest.approx(expected_cost(expected), rel=1e-9)
    assert latest(receiver, "gen_ai.client.unpriced_calls", OWN_SCOPE) == []


def test_streamed_call_that_refused_usage_is_counted_unpriced_with_its_reason(receiver: OtlpTestReceiver,
                                                                              llm: llm_server.LLMServer) -> None:
    calls, _ = run_client(receiver, llm, "--stream", "--refuse-usage", "--calls", "2")
    assert [c["prompt_tokens"] for c in calls] == [None, None]  # the API reported no usage
    points = receiver.wait_for(lambda: latest(receiver, "gen_ai.client.unpriced_calls", OWN_SCOPE),
                               what="unpriced calls")
    assert [(p.attributes["reason"], p.value) for p in points] == [("stream_without_usage", 2)]
    assert latest(receiver, "gen_ai.client.cost", OWN_SCOPE) == []
    spans = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"], what="spans")
    assert {s.attributes["otel_distro.gen_ai.cost.unpriced_reason"] for s in spans} == {"stream_without_usage"}
    # time to first chunk and per output chunk, under the conventions' names (the instrumentation records them)
    first = receiver.wait_for(lambda: latest(receiver, "gen_ai.client.operation.time_to_first_chunk"), what="ttfc")
    assert sum(p.count for p in first) == 2
    per_chunk = latest(receiver, "gen_ai.client.operation.time_per_output_chunk")
    assert sum(p.count for p in per_chunk) >= 2 * len(llm_server.REPLY.split())
