"""Seam: the log bridge puts records straight into the SDK batch log processors' queues.

Tested with opentelemetry-sdk 1.45. What it relies on:

- ``LoggerProvider._multi_log_record_processor._log_record_processors`` (the processors, a tuple);
- ``BatchLogRecordProcessor._batch_processor`` with ``emit``, ``_queue`` (a deque), ``_max_queue_size`` and
  ``_exporter`` (the distro's encoding exporter offers ``encoder``);
- ``Logger._log_record_limits``, ``Logger._is_enabled()`` and ``Logger._logger_metrics.emit_log()``.

Why: the batch processor's own ``on_emit`` copies the record and re-checks its attributes (a third of a
record's cost), and its queue drops the oldest record silently when full. Here the bridge sees whether a
queue has room before putting (a record that does not fit is counted as dropped), and a queue whose
exporter encodes OTLP itself receives the record encoded already. The public path is ``Logger.emit``.
"""

from __future__ import annotations

from collections.abc import Callable
from threading import Lock
from typing import Any

from opentelemetry.sdk._logs import Logger as SdkLogger
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor


class BatchQueue:
    """One batch processor's queue: a way in that never pushes a record out, the encoder of its exporter."""

    __slots__ = ("_inner", "_lock", "_put", "encoder")

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._put: Callable[[Any], None] = inner.emit
        # The worker and threads that log put concurrently: the check and the put are one step, or
        # two could fill the last place and the queue would push its oldest record out unseen.
        self._lock = Lock()
        encoder = getattr(getattr(inner, "_exporter", None), "encoder", None)
        self.encoder = encoder if callable(getattr(encoder, "encode_log_record", None)) else None

    def has_room(self) -> bool:
        return len(self._inner._queue) < self._inner._max_queue_size

    def put(self, item: Any) -> bool:
        """Queue ``item`` if there is room; False (nothing queued) when the queue is full."""
        inner = self._inner
        with self._lock:
            if len(inner._queue) >= inner._max_queue_size:
                return False
            self._put(item)
        return True

    def waiting(self) -> int:
        return len(self._inner._queue)


class DirectQueues:
    """The provider's batch queues, when every processor but ``skip`` ones is an SDK batch processor.

    Any other processor (one the application added, say) needs the SDK's ``Logger.emit``: then
    :meth:`current` is None. Looked up again whenever the provider's processors change.
    """

    def __init__(self, provider: LoggerProvider, skip: Callable[[Any], bool]) -> None:
        self._provider = provider
        self._skip = skip
        self._seen: Any = None
        self._queues: list[BatchQueue] | None = None

    def current(self) -> list[BatchQueue] | None:
        processors = self._provider._multi_log_record_processor._log_record_processors
        if processors is self._seen:
            return self._queues
        queues: list[BatchQueue] | None = []
        for processor in processors:
            if self._skip(processor):
                continue
            if type(processor) is not BatchLogRecordProcessor:
                queues = None
                break
            queues.append(BatchQueue(processor._batch_processor))  # type: ignore[union-attr]
        self._seen, self._queues = processors, queues
        return queues


def limits(logger: Any) -> Any:
    """The logger's attribute limits, or None when it is not the SDK's Logger (then: the public path)."""
    return logger._log_record_limits if type(logger) is SdkLogger else None


def enabled(logger: Any) -> bool:
    return bool(logger._is_enabled())


def count_emitted(logger: Any) -> None:
    """What the SDK's Logger.emit counts (its own self-observability metric), for a record put directly."""
    logger._logger_metrics.emit_log()


def waiting(provider: LoggerProvider) -> int:
    """Records still waiting in the provider's batch queues (at exit: those not exported)."""
    total = 0
    for processor in provider._multi_log_record_processor._log_record_processors:
        if type(processor) is BatchLogRecordProcessor:
            total += len(processor._batch_processor._queue)
    return total


def probe(provider: LoggerProvider) -> Callable[[], bool]:
    """A check of everything above on a live provider: True when the private parts are as tested."""
    def check() -> bool:
        processors = provider._multi_log_record_processor._log_record_processors
        if not isinstance(processors, tuple):
            return False
        for processor in processors:
            if type(processor) is BatchLogRecordProcessor:
                inner = processor._batch_processor
                if not (callable(inner.emit) and isinstance(inner._max_queue_size, int)
                        and isinstance(len(inner._queue), int)):
                    return False
        logger = provider.get_logger("otel_distro.probe")
        return (type(logger) is not SdkLogger
                or (limits(logger) is not None and isinstance(enabled(logger), bool)
                    and callable(logger._logger_metrics.emit_log)))
    return check
