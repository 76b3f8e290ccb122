"""A GenAI app: calls an OpenAI-compatible API with the real openai client.

Run it under ``opentelemetry-instrument`` (with opentelemetry-instrumentation-openai-v2
installed) and every call is priced with no code change::

    python -m examples.genai_app.llm_server --port 8081 &
    OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=local \\
        opentelemetry-instrument python -m examples.genai_app.client --stream

Prints one JSON line per call with the usage the API reported.
``--api`` wraps each call in ``otel_distro.ai.llm_call`` as well (it is then
counted once, by the API); ``--tenant`` puts ``tenant`` in the baggage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from openai import OpenAI, OpenAIError
from opentelemetry import baggage, context


def ask(client: OpenAI, model: str, question: str, stream: bool) -> dict[str, Any]:
    messages = [{"role": "system", "content": "You answer in one sentence."},
                {"role": "user", "content": question}]
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages)
        usage = reply.usage
        text = reply.choices[0].message.content
    else:
        chunks = client.chat.completions.create(model=model, messages=messages, stream=True,
                                                stream_options={"include_usage": True})
        parts, usage = [], None
        for chunk in chunks:
            if chunk.choices and chunk.choices[0].delta.content:
                parts.append(chunk.choices[0].delta.content)
            if chunk.usage:
                usage = chunk.usage
        text = "".join(parts)
    details = getattr(usage, "prompt_tokens_details", None)
    return {"model": model, "stream": stream, "text": text,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cached_tokens": getattr(details, "cached_tokens", 0) or 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Call an OpenAI-compatible API")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--question", default="What does OpenTelemetry give a Python service?")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--api", action="store_true", help="also wrap each call in otel_distro.ai.llm_call")
    parser.add_argument("--tenant", default=None, help="baggage tenant=... for cost attribution")
    args = parser.parse_args(argv)

    client = OpenAI(max_retries=0)  # OPENAI_BASE_URL and OPENAI_API_KEY from the environment
    token = context.attach(baggage.set_baggage("tenant", args.tenant)) if args.tenant else None
    status = 0
    try:
        for _ in range(args.calls):
            try:
                if args.api:
                    from otel_distro import ai

                    with ai.llm_call("openai", args.model, "chat") as call:
                        result = ask(client, args.model, args.question, args.stream)
                        result["api_cost"] = call.record_usage(
                            result["prompt_tokens"] or 0, result["completion_tokens"] or 0,
                            cache_read_tokens=result["cached_tokens"])
                else:
                    result = ask(client, args.model, args.question, args.stream)
            except OpenAIError as err:
                result = {"model": args.model, "error": type(err).__name__}
                status = 1
            print(json.dumps(result), flush=True)
    finally:
        if token is not None:
            context.detach(token)
    return status


if __name__ == "__main__":
    sys.exit(main())
