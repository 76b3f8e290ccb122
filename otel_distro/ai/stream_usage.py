"""Streamed OpenAI chat calls report their usage: the distro asks for it.

The openai client streams without usage unless the caller passes
``stream_options={"include_usage": True}``; such a call could not be priced.
With ``OTEL_DISTRO_AI_STREAM_USAGE=true`` (the default), a streamed
``chat.completions.create`` whose caller set no ``stream_options`` is sent with
``include_usage``; the instrumentation (wrapped inside this patch) sees the
final usage chunk and puts the usage on the span, and the caller's iterator
skips that chunk, which it did not ask for (its empty ``choices`` would break
code reading ``chunk.choices[0]``). A caller that set ``stream_options`` (even
``include_usage: False``) is left alone: it refused, and the call is counted
unpriced with reason ``stream_without_usage``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from otel_distro._internal_errors import report_internal_error

_PATCHED = "_otel_distro_stream_usage"
_TARGETS = (("openai.resources.chat.completions", "Completions", False),
            ("openai.resources.chat.completions", "AsyncCompletions", True))


def _asks_usage(kwargs: dict[str, Any]) -> bool:
    return bool(kwargs.get("stream")) and "stream_options" not in kwargs


def _added_usage_chunk(chunk: Any) -> bool:
    return not getattr(chunk, "choices", None) and getattr(chunk, "usage", None) is not None


class _Stream:
    """The caller's view of a stream: the usage chunk the distro asked for is skipped."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> Any:
        chunk = next(self._stream)
        while _added_usage_chunk(chunk):
            chunk = next(self._stream)
        return chunk

    def __enter__(self) -> _Stream:
        self._stream.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        return self._stream.__exit__(*exc)

    def __aiter__(self) -> _Stream:
        return self

    async def __anext__(self) -> Any:
        chunk = await self._stream.__anext__()
        while _added_usage_chunk(chunk):
            chunk = await self._stream.__anext__()
        return chunk

    async def __aenter__(self) -> _Stream:
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._stream.__aexit__(*exc)


def _sync(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    def with_usage(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = create.__get__(self, type(self))  # bound, as the instrumentation's wrapper expects
        if not _asks_usage(kwargs):
            return call(*args, **kwargs)
        return _Stream(call(*args, **kwargs, stream_options={"include_usage": True}))
    setattr(with_usage, _PATCHED, create)
    return with_usage


def _async(create: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(create)
    async def with_usage(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = create.__get__(self, type(self))
        if not _asks_usage(kwargs):
            return await call(*args, **kwargs)
        return _Stream(await call(*args, **kwargs, stream_options={"include_usage": True}))
    setattr(with_usage, _PATCHED, create)
    return with_usage


def uninstall() -> None:
    """Put the client's own ``create`` back (tests; an instrumentor's uninstrument expects its wrapper there)."""
    import importlib

    for module_name, class_name, _ in _TARGETS:
        cls = getattr(importlib.import_module(module_name), class_name)
        original = getattr(cls.__dict__.get("create"), _PATCHED, None)
        if original is not None:
            cls.create = original


def install() -> bool:
    """Wrap the openai client's chat ``create`` (call after its instrumentation, so this wrapper is outside)."""
    try:
        import importlib

        for module_name, class_name, is_async in _TARGETS:
            cls = getattr(importlib.import_module(module_name), class_name)
            create = cls.__dict__.get("create")
            if create is None or hasattr(create, _PATCHED):
                continue
            cls.create = (_async if is_async else _sync)(create)
        return True
    except Exception as err:
        report_internal_error("ai.stream_usage", "streamed OpenAI calls are not asked for their usage", err)
        return False
