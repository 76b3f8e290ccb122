"""A local OpenAI-compatible LLM server for tests and the demo: no network, no model.

Serves on 127.0.0.1 (free port by default):

* ``POST /v1/chat/completions`` — non-streaming, or streaming (server-sent
  events) when ``stream`` is true; the last chunk carries ``usage`` when
  ``stream_options.include_usage`` is true, as OpenAI does;
* ``POST /v1/embeddings``;
* ``GET /v1/models``;
* ``POST /v1/messages`` — the Anthropic Messages API, plain or streamed, in
  Anthropic's own format (see :mod:`examples.genai_app.anthropic_api`;
  ``ANTHROPIC_BASE_URL`` is ``server.root_url``).

A chat request offering ``tools`` and holding no tool result yet is answered
with one call of each offered tool (string parameters set to ``"Paris"``), as
an agent framework expects; once the tool results are in, with the reply text.

Usage is deterministic: prompt tokens are the whitespace-separated words of
the messages plus 3 per message, completion tokens the words of the reply
(``max_tokens`` caps it). A message containing ``cached=N`` reports N cached
prompt tokens (``prompt_tokens_details.cached_tokens``). A model whose name
starts with ``fail`` answers HTTP 500 with an OpenAI error body.

    from examples.genai_app import llm_server
    server = llm_server.start()            # server.base_url -> http://127.0.0.1:PORT/v1
    ...
    server.stop()

or ``python -m examples.genai_app.llm_server --port 8081`` (prints ``ready <base_url>``).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from examples.genai_app import anthropic_api

REPLY = ("OpenTelemetry gives every service traces, metrics and logs; this reply comes from the "
         "local test model, so it costs nothing to produce.")
_CACHED = re.compile(r"cached=(\d+)")


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):  # content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        total += len(str(content).split()) + 3
    return total


def cached_tokens(messages: list[dict[str, Any]], prompt_tokens: int) -> int:
    for message in messages:
        found = _CACHED.search(str(message.get("content") or ""))
        if found:
            return min(int(found.group(1)), prompt_tokens)
    return 0


def reply_words(max_tokens: int | None) -> list[str]:
    words = REPLY.split()
    return words[:max_tokens] if max_tokens else words


def tool_calls(request: dict[str, Any]) -> list[dict[str, Any]]:
    """One call of each offered tool, until the conversation holds a tool result."""
    tools = request.get("tools") or []
    if not tools or any(m.get("role") == "tool" for m in request.get("messages") or []):
        return []
    calls = []
    for n, tool in enumerate(tools):
        function = tool.get("function") or {}
        params = function.get("parameters") or {}
        arguments = {name: "Paris" for name, spec in (params.get("properties") or {}).items()
                     if spec.get("type") == "string"}
        calls.append({"id": f"call_{n}_{uuid.uuid4().hex[:8]}", "type": "function",
                      "function": {"name": function.get("name"), "arguments": json.dumps(arguments)}})
    return calls


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-llm/1"

    def log_message(self, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "server_error") -> None:
        self._json(status, {"error": {"message": message, "type": kind, "param": None, "code": None}})

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            self._json(200, {"object": "list", "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "local"}]})
        elif self.path == "/health":
            self._json(200, {"status": "ok"})
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self._error(400, "body is not JSON", "invalid_request_error")
            return
        path = self.path.rstrip("/")
        model = str(request.get("model") or "")
        if path.endswith("/messages"):
            self._anthropic(request, model)
            return
        if model.startswith("fail"):
            self._error(500, f"model {model} failed on purpose")
            return
        if path.endswith("/chat/completions"):
            self._chat(request, model)
        elif path.endswith("/embeddings"):
            self._embeddings(request, model)
        else:
            self._error(404, f"no route {self.path}", "invalid_request_error")

    def _usage(self, request: dict[str, Any], completion_tokens: int) -> dict[str, Any]:
        messages = request.get("messages") or []
        prompt = count_prompt_tokens(messages)
        return {"prompt_tokens": prompt, "completion_tokens": completion_tokens,
                "total_tokens": prompt + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": cached_tokens(messages, prompt)},
                "completion_tokens_details": {"reasoning_tokens": 0}}

    def _chat(self, request: dict[str, Any], model: str) -> None:
        words = reply_words(request.get("max_tokens") or request.get("max_completion_tokens"))
        ident = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        usage = self._usage(request, len(words))
        if not request.get("stream"):
            calls = tool_calls(request)
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else " ".join(words)}
            if calls:
                message["tool_calls"] = calls
            self._json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": "fp_local",
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if calls else "stop", "logprobs": None}],
                "usage": usage})
            return
        self._start_events()
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_local"}
        self._event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "finish_reason": None}]})
        for i, word in enumerate(words):
            self._event({**base, "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word},
                                              "finish_reason": None}]})
        self._event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            self._event({**base, "choices": [], "usage": usage})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _anthropic(self, request: dict[str, Any], model: str) -> None:
        if model.startswith("fail"):
            self._json(500, anthropic_api.error(f"model {model} failed on purpose"))
            return
        words = reply_words(request.get("max_tokens"))
        if not request.get("stream"):
            self._json(200, anthropic_api.message(request, model, words))
            return
        self._start_events()
        for name, data in anthropic_api.stream_events(request, model, words):
            self._chunk(f"event: {name}\n".encode() + b"data: " + json.dumps(data).encode() + b"\n\n")
        self._chunk(b"")

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _event(self, body: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(body).encode() + b"\n\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _embeddings(self, request: dict[str, Any], model: str) -> None:
        inputs = request.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        tokens = sum(len(str(i).split()) for i in items)
        self._json(200, {"object": "list", "model": model,
                         "data": [{"object": "embedding", "index": n, "embedding": [0.0, 0.1, 0.2]}
                                  for n in range(len(items))],
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})


class LLMServer:
    """A running server; ``stop()`` closes it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = ThreadingHTTPServer((host, port), _Handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-llm", daemon=True)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL should be."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def root_url(self) -> str:
        """What ANTHROPIC_BASE_URL should be (the client adds /v1/messages)."""
        return f"http://{self.host}:{self.port}"

    def serve(self) -> LLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LLMServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start(host: str = "127.0.0.1", port: int = 0) -> LLMServer:
    """Start the server in a background thread (port 0: a free one)."""
    return LLMServer(host, port).serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = start(args.host, args.port)
    print(f"ready {server.base_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
