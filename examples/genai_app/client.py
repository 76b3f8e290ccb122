"""A GenAI app: calls an OpenAI-compatible API with the real openai client, or the
Anthropic Messages API with the real anthropic client (``--provider anthropic``).

Run it under ``opentelemetry-instrument`` (with ``otel-distro[openai]`` or
``[anthropic]`` installed) and every call is priced with no code change::

    python -m examples.genai_app.llm_server --port 8081 &
    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=local \\
        opentelemetry-instrument python -m examples.genai_app.client --stream
    ANTHROPIC_BASE_URL=http://127.0.0.1:8081 ANTHROPIC_API_KEY=local \\
        opentelemetry-instrument python -m examples.genai_app.client --provider anthropic \\
        --model claude-3-5-haiku-latest

Prints one JSON line per call with the usage the API reported.
``--api`` wraps each call in ``otel_distro.ai.llm_call`` as well (it is then
counted once, by the API); ``--tenant`` puts ``tenant`` in the baggage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from opentelemetry import baggage, context

SYSTEM = "You answer in one sentence."


def ask(client: Any, model: str, question: str, stream: bool, include_usage: bool | None = True) -> dict[str, Any]:
    """One OpenAI chat call; ``include_usage=None`` leaves ``stream_options`` out (the client's default)."""
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": question}]
    bare = 0  # chunks with no choices the caller saw (only the usage chunk it asked for has none)
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages)
        usage = reply.usage
        text = reply.choices[0].message.content
    else:
        options = {} if include_usage is None else {"stream_options": {"include_usage": include_usage}}
        chunks = client.chat.completions.create(model=model, messages=messages, stream=True, **options)
        parts, usage = [], None
        for chunk in chunks:
            bare += not chunk.choices
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
        text = "".join(parts)
    details = getattr(usage, "prompt_tokens_details", None)
    return {"model": model, "stream": stream, "text": text,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cached_tokens": getattr(details, "cached_tokens", 0) or 0, "chunks_without_choices": bare}


def ask_anthropic(client: Any, model: str, question: str, stream: bool) -> dict[str, Any]:
    """One Anthropic Messages call; prompt_tokens includes the cached ones, as in the conventions."""
    messages = [{"role": "user", "content": question}]
    if not stream:
        reply = client.messages.create(model=model, max_tokens=256, system=SYSTEM, messages=messages)
        usage, text = reply.usage, "".join(b.text for b in reply.content if b.type == "text")
    else:
        with client.messages.stream(model=model, max_tokens=256, system=SYSTEM, messages=messages) as events:
            text = "".join(events.text_stream)
            usage = events.get_final_message().usage
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    return {"model": model, "stream": stream, "text": text,
            "prompt_tokens": usage.input_tokens + read + write, "completion_tokens": usage.output_tokens,
            "cached_tokens": read, "cache_write_tokens": write}


def make_client(provider: str) -> tuple[Any, type[Exception]]:
    """The real client (base URL and key from the environment) and its error class."""
    if provider == "anthropic":
        import anthropic

        return anthropic.Anthropic(max_retries=0), anthropic.APIError
    import openai

    return openai.OpenAI(max_retries=0), openai.OpenAIError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call an OpenAI-compatible API")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--question", default="What does OpenTelemetry give a Python service?")
    parser.add_argument("--provider", choices=("openai", "anthropic"), default="openai")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--no-usage", action="store_true",
                        help="stream without stream_options (the openai client's default)")
    parser.add_argument("--refuse-usage", action="store_true",
                        help="stream with stream_options.include_usage false")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--api", action="store_true", help="also wrap each call in otel_distro.ai.llm_call")
    parser.add_argument("--tenant", default=None, help="baggage tenant=... for cost attribution")
    parser.add_argument("--budget-callback", action="store_true",
                        help="print the budgets crossed (OTEL_DISTRO_AI_BUDGETS_FILE) as a last JSON line")
    args = parser.parse_args(argv)
    crossed: list[dict[str, Any]] = []
    if args.budget_callback:
        from otel_distro import ai

        ai.on_budget_crossed(lambda event: crossed.append({"budget": event.budget.name, "spent": event.spent_usd}))

    client, api_error = make_client(args.provider)

    def call() -> dict[str, Any]:
        if args.provider == "anthropic":
            return ask_anthropic(client, args.model, args.question, args.stream)
        include_usage = False if args.refuse_usage else None if args.no_usage else True
        return ask(client, args.model, args.question, args.stream, include_usage)

    token = context.attach(baggage.set_baggage("tenant", args.tenant)) if args.tenant else None
    status = 0
    try:
        for _ in range(args.calls):
            try:
                if args.api:
                    from otel_distro import ai

                    with ai.llm_call(args.provider, args.model, "chat") as recorded:
                        result = call()
                        result["api_cost"] = recorded.record_usage(
                            result["prompt_tokens"] or 0, result["completion_tokens"] or 0,
                            cache_read_tokens=result["cached_tokens"])
                else:
                    result = call()
            except api_error as err:
                result = {"model": args.model, "error": type(err).__name__}
                status = 1
            print(json.dumps(result), flush=True)
    finally:
        if token is not None:
            context.detach(token)
    if args.budget_callback:
        time.sleep(0.5)  # callbacks run on threads of their own
        print(json.dumps({"budgets_crossed": crossed}), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
