"""The Anthropic Messages API as the local LLM server answers it (``POST /v1/messages``).

Bodies and server-sent events follow Anthropic's published format: a ``message``
object, or the stream ``message_start`` (input usage), ``content_block_start``,
``ping``, ``content_block_delta`` per word, ``content_block_stop``,
``message_delta`` (stop reason, output usage), ``message_stop``. As in the
real API, ``usage.input_tokens`` excludes cached tokens, which are reported
apart (``cache_read_input_tokens``, ``cache_creation_input_tokens``).

Token counts are those of the OpenAI-compatible side (see ``llm_server``):
words of the messages (and ``system``) plus 3 per message; ``cached=N`` in a
message reports N cache-read tokens, ``cache_write=N`` N cache-write tokens.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

_CACHE_WRITE = re.compile(r"cache_write=(\d+)")
_CACHED = re.compile(r"cached=(\d+)")


def _text(content: Any) -> str:
    if isinstance(content, list):  # content blocks
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return str(content or "")


def usage(request: dict[str, Any], output_tokens: int) -> dict[str, int]:
    """The usage Anthropic would report: input excludes the cached tokens."""
    texts = [_text(m.get("content")) for m in request.get("messages") or []]
    total = sum(len(t.split()) + 3 for t in texts)
    if request.get("system"):
        total += len(_text(request["system"]).split())
    joined = " ".join(texts)
    read = min(int(m.group(1)), total) if (m := _CACHED.search(joined)) else 0
    write = min(int(m.group(1)), total - read) if (m := _CACHE_WRITE.search(joined)) else 0
    return {"input_tokens": total - read - write, "output_tokens": output_tokens,
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write}


def message(request: dict[str, Any], model: str, words: list[str]) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": " ".join(words)}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage(request, len(words))}


def stream_events(request: dict[str, Any], model: str, words: list[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of a streamed reply."""
    full = usage(request, len(words))
    start = {**message(request, model, []), "content": [], "stop_reason": None,
             "usage": {**full, "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    yield "content_block_start", {"type": "content_block_start", "index": 0,
                                  "content_block": {"type": "text", "text": ""}}
    yield "ping", {"type": "ping"}
    for i, word in enumerate(words):
        yield "content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": (" " if i else "") + word}}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield "message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                            "usage": {"output_tokens": len(words)}}
    yield "message_stop", {"type": "message_stop"}


def error(message_text: str, kind: str = "api_error") -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message_text}}
