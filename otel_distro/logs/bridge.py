"""The bridge handler: the thread that logs queues the record; a worker thread prints and exports it.

The thread that logs only captures the record - its message, span ids and extras, as they are at that
moment - and queues it (about 1.5 us). A worker thread writes the (redacted) console line and hands the
record to the batch processors: encoded and redacted already, as OTLP bytes, for the OTLP/HTTP exporter
(:mod:`otel_distro.otlp_wire`); as the SDK's log record for other exporters, redacted in their export
thread (:mod:`otel_distro.redaction`).

The bridge's queue is bounded (BRIDGE_QUEUE_SIZE). Past it, the thread that logs does the worker's part
for its own record - what the SDK's own handler always does - so no record and no console line is
dropped there. A record is dropped only when a batch queue is full, and then it is counted
(:mod:`otel_distro.logs.delivery`).
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import weakref
from typing import Any

from opentelemetry._logs import LogRecord, NoOpLogger, get_logger
from opentelemetry.context import Context
from opentelemetry.instrumentation.log_utils import std_to_otel
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, get_current_span, set_span_in_context

from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import FastPath, log_queue
from otel_distro.console import ConsoleWriter, Entry, captured_extras
from otel_distro.logs.delivery import QUEUE_FULL, Losses
from otel_distro.logs.provider import DrainBridge
from otel_distro.logs.records import record_attributes
from otel_distro.sdk_limits import kept_as_is

# Records waiting for the bridge's worker thread, at most.
BRIDGE_QUEUE_SIZE = 65_536
# The worker takes queued records every BRIDGE_POLL_SECONDS while they keep
# coming (so console lines appear within that time), sooner when
# BRIDGE_WAKE_AT are waiting; after an empty poll it dozes until the next record.
BRIDGE_POLL_SECONDS = 0.05
BRIDGE_WAKE_AT = 4_096
BRIDGE_DOZE_SECONDS = 5.0
# Records the worker takes from the queue at a time (one console write each).
_CHUNK = 1024

_SEVERITY_TEXTS = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_EMPTY_CONTEXT = Context()
# The SDK's records and the log pipeline's reports on itself: never exported back (a failing export
# or a full queue would feed itself); the distro's diagnostics show them (otel_distro.diagnostics).
_NOT_BRIDGED = ("opentelemetry.", "otel_distro.delivery")


def _not_a_queue_for_plain_lines(processor: object) -> bool:
    """The drain itself, and processors that declare plain log lines are none of their business (GenAI content)."""
    return isinstance(processor, DrainBridge) or getattr(processor, "skips_plain_log_lines", False)


class BridgeHandler(logging.Handler):
    """Queues records in the logging thread; a worker exports them and writes the console lines.

    ``extra`` values the SDK would reject are turned into text.
    """

    def __init__(self, level: int, logger_provider: LoggerProvider, *, export: bool = True,
                 console: ConsoleWriter | None = None, queue_size: int = BRIDGE_QUEUE_SIZE,
                 losses: Losses | None = None) -> None:
        # With a console, every record reaching the root logger is printed;
        # only those at export_level or above are exported.
        super().__init__(level=logging.NOTSET if console else level)
        self._logger_provider = logger_provider
        self.export_level = level if export else sys.maxsize
        self.console = console
        # The distro's own records are exported; printed by its diagnostics when they are on.
        self.own_records_printed = True
        self.queue_size = queue_size
        self.losses = losses if losses is not None else Losses()
        self._queue: collections.deque[Entry] = collections.deque()
        self._dozing = False
        self._busy = False
        self._stopping = False
        self._loggers: dict[str, Any] = {}
        self.direct_queues = log_queue.DirectQueues(logger_provider, skip=_not_a_queue_for_plain_lines)
        self._emit = FastPath("log_queue", self._emit_to_queues, self._emit_through_sdk)
        self._emit.probe(log_queue.probe(logger_provider))
        self._start_worker()
        _restart_after_fork.add(self)

    # ---- the logging thread
    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if record.name.startswith(_NOT_BRIDGED) or (self.filters and not self.filter(record)):
            return False
        try:
            message = record.getMessage()
        except Exception:
            self.handleError(record)
            return False
        context = get_current_span().get_span_context()
        entry = Entry(record, message, context if context.is_valid else None, captured_extras(record))
        queue = self._queue
        if len(queue) >= self.queue_size:
            self._process([entry])  # the worker cannot keep up: this thread does its part
            return True
        queue.append(entry)
        # Waking the worker for every record costs more than the record (thread
        # switches, GIL hand-overs): it is woken only from its doze or when the
        # queue fills; otherwise it takes the queue in batches every BRIDGE_POLL_SECONDS.
        if self._dozing or len(queue) == BRIDGE_WAKE_AT:
            self._dozing = False
            self._wake.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    # ---- the worker thread
    def _start_worker(self) -> None:
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._pid = os.getpid()
        self._worker = threading.Thread(target=self._run, name="otel-distro-logs", daemon=True)
        self._worker.start()

    def _run(self) -> None:
        queue, wake = self._queue, self._wake
        while True:
            if queue:
                self._busy = True
                while queue:
                    self._process(_take(queue))
                self._busy = False
                with self._done:
                    self._done.notify_all()
                self.losses.report_if_due()
                if self._stopping:
                    return
                # Let records gather: the next batch is taken one poll later.
                wake.clear()
                wake.wait(BRIDGE_POLL_SECONDS)
                continue
            if self._stopping:
                return
            # Nothing came during a poll: doze until the next record wakes us.
            wake.clear()
            self._dozing = True
            if queue:  # appended before _dozing was visible to the logging thread
                self._dozing = False
                continue
            wake.wait(BRIDGE_DOZE_SECONDS)
            self._dozing = False

    def _process(self, entries: list[Entry]) -> None:
        """Export and print ``entries``: from the worker, or from a thread that logs when the queue is full."""
        lines: list[str] = []
        console = self.console
        exported = 0
        for entry in entries:
            try:
                if entry.record.levelno >= self.export_level:
                    self._export(entry)
                    exported += 1
                if console is not None and (self.own_records_printed or not _own(entry.record.name)):
                    lines.append(console.line(entry))
            except Exception as err:  # one bad record must not stop the others
                report_internal_error("logs.record", "a log record could not be exported or printed; "
                                      "the others go on", err)
        if exported:
            self.losses.handed_on(exported)
        if lines:
            try:
                console.write(lines)  # type: ignore[union-attr]
            except Exception as err:
                report_internal_error("logs.console", "console log lines could not be written", err)

    def _export(self, entry: Entry) -> None:
        name = entry.record.name
        logger = self._loggers.get(name)
        if logger is None:
            logger = get_logger(name, logger_provider=self._logger_provider)
            if len(self._loggers) < 4096:
                self._loggers[name] = logger
        if isinstance(logger, NoOpLogger):
            return
        attributes, event_name = record_attributes(entry)
        self._emit(entry, logger, attributes, event_name)

    def _emit_through_sdk(self, entry: Entry, logger: Any, attributes: dict[str, Any],
                          event_name: str | None) -> None:
        """The public path: the SDK's Logger.emit (it copies the record; its batch queues drop silently)."""
        record = entry.record
        span = INVALID_SPAN if entry.context is None else NonRecordingSpan(entry.context)
        logger.emit(LogRecord(
            timestamp=int(record.created * 1e9), observed_timestamp=time.time_ns(),
            context=set_span_in_context(span), severity_text=_SEVERITY_TEXTS.get(
                record.levelname, record.levelname),
            severity_number=std_to_otel(record.levelno), body=entry.message,
            attributes=attributes, event_name=event_name))

    def _emit_to_queues(self, entry: Entry, logger: Any, attributes: dict[str, Any],
                        event_name: str | None) -> None:
        """The fast path: straight into the batch queues, counted as dropped where one is full."""
        queues = self.direct_queues.current()
        limits = log_queue.limits(logger)
        if queues is None or limits is None or not kept_as_is(
                attributes, limits.max_log_record_attributes, limits.max_log_record_attribute_length):
            self._emit_through_sdk(entry, logger, attributes, event_name)
            return
        if not log_queue.enabled(logger):
            return
        record, context = entry.record, entry.context
        timestamp, observed = int(record.created * 1e9), time.time_ns()
        severity = std_to_otel(record.levelno)
        severity_text = _SEVERITY_TEXTS.get(record.levelname, record.levelname)
        readable = None
        log_queue.count_emitted(logger)
        for queue in queues:
            if not queue.has_room():  # not worth encoding
                self.losses.add(QUEUE_FULL)
                continue
            if queue.encoder is not None:
                try:
                    encoded = queue.encoder.encode_log_record(
                        logger.resource, logger.instrumentation_scope, timestamp, severity.value,
                        severity_text, entry.message, attributes,
                        int(context.trace_flags) if context else 0, context.trace_id if context else 0,
                        context.span_id if context else 0, observed, event_name)
                except Exception as err:  # this record then goes as the SDK's record
                    report_internal_error("logs.encode_ahead", "a log record could not be encoded ahead of "
                                          "its batch; it goes as the SDK's record", err)
                else:
                    if not queue.put(encoded):
                        self.losses.add(QUEUE_FULL)
                    continue
            if readable is None:
                api_record = LogRecord(
                    timestamp=timestamp, observed_timestamp=observed,
                    trace_id=context.trace_id if context else None,
                    span_id=context.span_id if context else None,
                    trace_flags=context.trace_flags if context else None,
                    severity_text=severity_text, severity_number=severity, body=entry.message,
                    attributes=attributes, event_name=event_name)
                api_record.context = _EMPTY_CONTEXT  # as the batch processor does: no request context kept
                readable = ReadableLogRecord(log_record=api_record, resource=logger.resource,
                                             instrumentation_scope=logger.instrumentation_scope,
                                             limits=limits)
            if not queue.put(readable):
                self.losses.add(QUEUE_FULL)

    # ---- flushing
    def drain(self, timeout: float = 5.0) -> bool:
        """Wait (at most ``timeout`` s) until every queued record is exported and printed."""
        if os.getpid() != self._pid:
            self._after_fork()
        deadline = time.monotonic() + timeout
        with self._done:
            while self._queue or self._busy:
                if not self._worker.is_alive():
                    self._process(_take(self._queue))
                    continue
                self._wake.set()
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._done.wait(min(left, 0.05))
        return True

    def flush(self) -> None:
        self.drain()

    def close(self) -> None:
        # dictConfig closes every handler ever created (logging.shutdown), ours
        # included although the guard took it off the root: drain, keep running.
        # remove_bridge() stops the worker.
        self.drain()
        super().close()

    def stop(self, timeout: float = 5.0) -> None:
        self.drain(timeout)
        self._stopping = True
        self._wake.set()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout)
        while self._queue:  # the worker did not finish in time: nothing queued is left behind
            self._process(_take(self._queue))

    def _after_fork(self) -> None:
        # The worker thread does not exist in a forked child: start the child's own.
        self._dozing, self._busy, self._stopping = False, False, False
        self._start_worker()


def _own(name: str) -> bool:
    return name == "otel_distro" or name.startswith("otel_distro.")


def _take(queue: collections.deque[Entry]) -> list[Entry]:
    """Up to _CHUNK entries from the head of the queue (other threads may take too)."""
    taken = []
    try:
        for _ in range(min(len(queue), _CHUNK)):
            taken.append(queue.popleft())
    except IndexError:
        pass
    return taken


_restart_after_fork: weakref.WeakSet[BridgeHandler] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_restart_after_fork):
        try:
            handler._after_fork()
        except Exception as err:  # never let telemetry break a fork
            report_internal_error("logs.after_fork", "the log bridge's worker could not be restarted in a "
                                  "forked child; its records are not exported", err)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
