"""Seam: the middleware's finished SERVER spans handed to the span processors in batches.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1. When a span ends, the SDK calls every processor's ``on_end``
with it. For the middleware's SERVER spans that call only queues the span for a later export (the SDK's
``BatchSpanProcessor``) or is skipped (the distro's own processors do their work in ``_on_ending``, which still
runs as the span ends). Made once per request it reloads the processors' code and state each time; made for
up to ``BATCH`` spans at once it costs less (bench/server_cpu_breakdown.py: ~3% of a request's server CPU).

A span's ``on_end`` then comes late: at the latest ``FLUSH_SECONDS`` after it ended (a thread sees to it), when
``BATCH`` are waiting, and before the provider's ``force_flush`` and ``shutdown`` go on (:class:`EndBatches` is
the provider's first processor). It is batched only while every processor of the provider is one whose
``on_end`` may come late (the SDK's ``BatchSpanProcessor``, processors that say so with ``late_on_end_ok``);
a processor added later turns batching off for the spans that end after it, and first gets the waiting ones.
In a forked child the parent's waiting spans are dropped: the parent hands them on.

Private parts relied on: ``SynchronousMultiSpanProcessor`` (the provider's ``_active_span_processor``) and its
``_span_processors`` tuple; the SDK span's ``_span_processor`` field (set by :mod:`.server_span`). Behind
:data:`BATCHING`: on any failure the span's ``on_end`` is made at once, and batching is off for the process.
"""

from __future__ import annotations

import collections
import functools
import os
import threading
import time
import weakref
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from otel_distro._batches import hand_on_each
from otel_distro._sdk_private import FastPath

BATCH = 128
FLUSH_SECONDS = 0.1


class EndBatches(SpanProcessor):
    """The spans whose ``on_end`` waits, and the provider processor that hands them on before it flushes."""

    def __init__(self, processors: SynchronousMultiSpanProcessor) -> None:
        self.processors = processors
        self._waiting: collections.deque[ReadableSpan] = collections.deque()
        self._checked: tuple[Any, ...] | None = None
        self._may_wait = False
        self._handing_on = threading.Lock()
        self._armed = False
        self._due = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.deferring = _Deferring(self)
        _live.add(self)

    # ---- as one of the provider's processors: every span passes (the base class's on_start and on_end do
    # nothing with it); flushing and shutting down hand the waiting spans on first
    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.hand_on()
        return True

    def shutdown(self) -> None:
        self._stopping = True
        self._due.set()
        self.hand_on()

    # ---- the batching
    def check(self, current: tuple[Any, ...]) -> None:
        """Note whether every processor in ``current`` accepts a late ``on_end``."""
        self.hand_on()  # a processor added since gets the waiting spans first
        self._checked = current
        self._may_wait = bool(current) and current[0] is self and all(
            type(processor) is BatchSpanProcessor or getattr(processor, "late_on_end_ok", False)
            for processor in current[1:])

    def arm(self) -> None:
        """Have the thread hand the waiting spans on within FLUSH_SECONDS."""
        self._armed = True
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="otel-distro-span-ends", daemon=True)
            self._thread.start()
        self._due.set()

    def hand_on(self, blocking: bool = True) -> None:
        """Make the waiting spans' ``on_end`` calls, oldest first."""
        hand_on_each(self._waiting, self._handing_on, self.processors.on_end, blocking=blocking,
                     error_key="spans.end_batch",
                     error_message="a span processor failed on a finished span; the other spans go on")

    def _run(self) -> None:
        due = self._due
        while not self._stopping:
            due.wait()
            due.clear()
            if self._stopping:
                return
            time.sleep(FLUSH_SECONDS)  # let the batch fill
            self._armed = False  # before handing on: a span added from now on arms the next round
            self.hand_on()

    def _after_fork(self) -> None:
        self._waiting.clear()  # the parent hands these on
        self._handing_on = threading.Lock()
        self._due = threading.Event()
        self._armed = False
        self._thread = None


class _Deferring:
    """What a SERVER span calls as its processor: the provider's processors, with ``on_end`` batched (each call
    goes straight where it is answered: no frame of its own)."""

    __slots__ = ("_on_ending", "on_end", "on_start")

    def __init__(self, batches: EndBatches) -> None:
        self.on_start = batches.processors.on_start
        self._on_ending = batches.processors._on_ending
        self.on_end = functools.partial(BATCHING, batches)


def _end_batched(batches: EndBatches, span: ReadableSpan) -> None:
    current = batches.processors._span_processors
    if current is not batches._checked:
        batches.check(current)
    if not batches._may_wait or batches._stopping:
        batches.processors.on_end(span)
        return
    waiting = batches._waiting
    waiting.append(span)
    if len(waiting) >= BATCH:
        batches.hand_on(blocking=False)  # the thread may be at it already
    elif not batches._armed:
        batches.arm()


def _end_now(batches: EndBatches, span: ReadableSpan) -> None:
    batches.processors.on_end(span)


def _sdk_has_processor_tuple() -> bool:
    return isinstance(SynchronousMultiSpanProcessor()._span_processors, tuple)


def new_guards() -> tuple[FastPath[None]]:
    """The batching guard, probed against this SDK."""
    batching = FastPath("span_end_batches", _end_batched, _end_now)
    batching.probe(_sdk_has_processor_tuple)
    return (batching,)


(BATCHING,) = new_guards()


def install(provider: TracerProvider) -> EndBatches | None:
    """Put :class:`EndBatches` first among ``provider``'s processors (before any other is added)."""
    if not BATCHING.active:
        return None
    processors = getattr(provider, "_active_span_processor", None)
    if type(processors) is not SynchronousMultiSpanProcessor or processors._span_processors:
        return None
    batches = EndBatches(processors)
    provider.add_span_processor(batches)
    return batches


_last: tuple[Any, Any] = (None, None)  # the provider's processors asked about last, and the answer


def processor_for(tracer_processor: Any) -> Any:
    """What a SERVER span of a tracer whose processor is ``tracer_processor`` should call: the batching one
    when the provider has :class:`EndBatches` first, else the provider's processors themselves."""
    global _last
    if _last[0] is tracer_processor:
        return _last[1]
    chosen = tracer_processor
    current = getattr(tracer_processor, "_span_processors", None)
    if type(tracer_processor) is SynchronousMultiSpanProcessor and current and isinstance(current[0], EndBatches) \
            and current[0].processors is tracer_processor:
        chosen = current[0].deferring
    _last = (tracer_processor, chosen)  # one provider serves almost every process
    return chosen


_live: weakref.WeakSet[EndBatches] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for batches in list(_live):
        batches._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
