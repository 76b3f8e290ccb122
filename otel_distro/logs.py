"""The logger provider and the bridge from stdlib ``logging`` to OpenTelemetry logs.

The bridge is one handler on the root logger, installed once per process,
and kept there when the application re-configures logging with
``basicConfig``/``dictConfig``/``fileConfig``. It leaves the application's
own handlers, and so its console output, as they were - unless
``OTEL_DISTRO_LOG_FORMAT`` is json or text: then the bridge also writes the
console lines, and the root logger's plain stdout/stderr handlers step aside
(put back at shutdown) so that each record is printed once.

The thread that logs only queues the record with its message and span ids
(about 1.5 us). A worker thread writes the (redacted) console line and hands
the record to the batch processors: encoded and redacted already, as OTLP
bytes, for the OTLP/HTTP exporter (:mod:`otel_distro.otlp_wire`); as the
SDK's log record for other exporters, redacted in their export thread
(:mod:`otel_distro.redaction`). Neither runs in the thread that logs.
"""

from __future__ import annotations

import collections
import functools
import logging
import logging.config
import os
import sys
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_distro import forksafe, redaction
from otel_distro.console import RECORD_FIELDS, ConsoleWriter, Entry, is_console_handler
from otel_distro.sdk_limits import kept_as_is
from otel_distro.settings import Settings, export_file

# The batch processor's queue and batch sizes are settings (OTEL_BLRP_MAX_QUEUE_SIZE,
# _MAX_EXPORT_BATCH_SIZE). Their defaults: the SDK's 2048-record queue drops records
# in bursts (measured: ~70k lines/s); 65,536 holds a 50,000 lines/s burst for a
# second (bench/bench_logs.py). Batches stay at the SDK's 512: records that wait for
# bigger ones reach the collector's oldest generation and bring on full collections.
# Records waiting for the bridge's worker thread, at most.
BRIDGE_QUEUE_SIZE = 65_536
# The worker takes queued records every BRIDGE_POLL_SECONDS while they keep
# coming (so console lines appear within that time), sooner when
# BRIDGE_WAKE_AT are waiting; after an empty poll it dozes until the next record.
BRIDGE_POLL_SECONDS = 0.05
BRIDGE_WAKE_AT = 4_096
BRIDGE_DOZE_SECONDS = 5.0


def exporters(settings: Settings) -> list[LogRecordExporter]:
    chosen: list[LogRecordExporter] = []
    for name in settings.logs_exporter:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            exporter = OTLPLogExporter(endpoint=settings.signal_endpoint("logs"),
                                       timeout=settings.signal_timeout_s("logs"))
            chosen.append(forksafe.track(exporter))
        elif name == "file":
            from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter

            chosen.append(FileLogExporter(export_file(settings, "logs")))
        elif name == "console":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

            chosen.append(ConsoleLogRecordExporter())
    return chosen


class _DrainBridge(LogRecordProcessor):
    """First processor of the provider: a flush of the provider first empties the bridge's queue."""

    def on_emit(self, log_record: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        handler = _bridge
        if handler is not None:
            handler.drain(timeout_millis / 1000)
        return True


def build(settings: Settings, resource: Resource,
          log_exporters: Sequence[LogRecordExporter] | None = None) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_log_record_processor(_DrainBridge())
    redactor = redaction.from_settings(settings)
    for exporter in exporters(settings) if log_exporters is None else log_exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(
            redaction.wrap_log_exporter(exporter, redactor),
            max_queue_size=settings.log_queue_size, max_export_batch_size=settings.log_export_batch_size))
    return provider


_PLAIN = (str, bool, int, float, bytes)
_EMPTY_CONTEXT = Context()


def _attribute_value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: plain values kept, others as text."""
    if isinstance(value, _PLAIN) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return value
    return str(value)


def _record_attributes(record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
    """A record's ``extra`` fields and exception as attributes, and its event name.

    The event name comes from ``otel.event.name`` (stable) or ``event.name``
    (deprecated), which are not kept as attributes; ``None`` values are left out.
    """
    attributes = {key: _attribute_value(value) for key, value in vars(record).items()
                  if key not in RECORD_FIELDS and value is not None}
    event_name = attributes.pop("otel.event.name", None)
    deprecated_event_name = attributes.pop("event.name", None)
    if event_name is None:
        event_name = deprecated_event_name
    if record.exc_info:
        kind, exc, tb = record.exc_info
        if kind is not None:
            attributes["exception.type"] = kind.__name__
        if exc is not None:
            attributes["exception.message"] = _exception_message(exc)
        if tb is not None:
            attributes["exception.stacktrace"] = "".join(traceback.format_exception(kind, exc, tb))
    return attributes, event_name if event_name is None else str(event_name)


def _exception_message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a broken __str__ must not lose the record
        return type(exc).__name__


def _bridge_handler_class() -> type[logging.Handler]:
    # The handler is ours rather than a subclass of the contrib logging
    # instrumentation's: importing that package loads the instrumentor framework
    # (packaging, wrapt, dependency checks: ~20 ms of start-up) for one base class.
    from opentelemetry._logs import LogRecord, NoOpLogger, get_logger
    from opentelemetry.instrumentation.log_utils import std_to_otel
    from opentelemetry.sdk._logs import Logger as SdkLogger
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.trace import (
        INVALID_SPAN,
        NonRecordingSpan,
        get_current_span,
        set_span_in_context,
    )

    severity_texts = {"WARNING": "WARN", "CRITICAL": "FATAL"}

    class BridgeHandler(logging.Handler):
        """Queues records in the logging thread; a worker exports them and writes the console lines.

        ``extra`` values the SDK would reject are turned into text.
        """

        def __init__(self, level: int, logger_provider: LoggerProvider, *, export: bool = True,
                     console: ConsoleWriter | None = None, queue_size: int = BRIDGE_QUEUE_SIZE) -> None:
            # With a console, every record reaching the root logger is printed;
            # only those at export_level or above are exported.
            super().__init__(level=logging.NOTSET if console else level)
            self._logger_provider = logger_provider
            self.export_level = level if export else sys.maxsize
            self.console = console
            self.queue_size = queue_size
            self.dropped = 0
            self._queue: collections.deque[Entry] = collections.deque()
            self._dozing = False
            self._busy = False
            self._stopping = False
            self._loggers: dict[str, Any] = {}
            self._seen_processors: Any = None
            self._queues: list[Callable[[Any], Any]] | None = None
            self._start_worker()
            _restart_after_fork.add(self)

        # ---- the logging thread
        def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
            if record.name.startswith("opentelemetry.") or (self.filters and not self.filter(record)):
                return False
            try:
                message = record.getMessage()
            except Exception:
                self.handleError(record)
                return False
            queue = self._queue
            if len(queue) >= self.queue_size:
                self.dropped += 1
                return False
            context = get_current_span().get_span_context()
            queue.append(Entry(record, message, context if context.is_valid else None))
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
                        self._process(queue)
                    self._busy = False
                    with self._done:
                        self._done.notify_all()
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

        def _process(self, queue: collections.deque[Entry]) -> None:
            lines: list[str] = []
            console = self.console
            for _ in range(min(len(queue), 1024)):
                entry = queue.popleft()
                try:
                    if entry.record.levelno >= self.export_level:
                        self._export(entry)
                    if console is not None:
                        lines.append(console.line(entry))
                except Exception as err:  # one bad record must not stop the others
                    _report_once(err)
            if lines:
                try:
                    console.write(lines)  # type: ignore[union-attr]
                except Exception as err:
                    _report_once(err)

        def _export(self, entry: Entry) -> None:
            record = entry.record
            logger = self._loggers.get(record.name)
            if logger is None:
                logger = get_logger(record.name, logger_provider=self._logger_provider)
                if len(self._loggers) < 4096:
                    self._loggers[record.name] = logger
            if isinstance(logger, NoOpLogger):
                return
            attributes, event_name = _record_attributes(record)
            queues = self._batch_queues()
            limits = logger._log_record_limits if type(logger) is SdkLogger else None
            if queues is not None and limits is not None and kept_as_is(
                    attributes, limits.max_log_record_attributes, limits.max_log_record_attribute_length):
                self._emit_to_queues(entry, logger, attributes, event_name, queues)
                return
            span = INVALID_SPAN if entry.context is None else NonRecordingSpan(entry.context)
            logger.emit(LogRecord(
                timestamp=int(record.created * 1e9), observed_timestamp=time.time_ns(),
                context=set_span_in_context(span), severity_text=severity_texts.get(
                    record.levelname, record.levelname),
                severity_number=std_to_otel(record.levelno), body=entry.message,
                attributes=attributes, event_name=event_name))

        def _batch_queues(self) -> list[tuple[Callable[[Any], Any], Any]] | None:
            """The queues of the provider's batch processors, when it has no other processor.

            Then a record goes straight into them as the batch processor's own on_emit
            would put it, without the SDK's per-record copies and attribute re-checks
            (a third of a record's cost); a queue whose exporter encodes OTLP itself
            gets the record encoded here, ahead of its batch (its encoder comes
            along). Any other processor - added by the application, say - gets
            records through the SDK's Logger.emit as usual.
            """
            multi = getattr(self._logger_provider, "_multi_log_record_processor", None)
            processors = getattr(multi, "_log_record_processors", None)
            if processors is self._seen_processors:
                return self._queues
            queues: list[tuple[Callable[[Any], Any], Any]] | None = []
            for processor in processors or ():
                if isinstance(processor, _DrainBridge):
                    continue
                inner = getattr(processor, "_batch_processor", None)
                if type(processor) is not BatchLogRecordProcessor or not callable(getattr(inner, "emit", None)):
                    queues = None
                    break
                encoder = getattr(getattr(inner, "_exporter", None), "encoder", None)
                ahead = encoder if callable(getattr(encoder, "encode_log_record", None)) else None
                queues.append((inner.emit, ahead))  # type: ignore[union-attr]
            self._seen_processors, self._queues = processors, queues
            return queues

        def _emit_to_queues(self, entry: Entry, logger: Any, attributes: dict[str, Any],
                            event_name: str | None, queues: list[tuple[Callable[[Any], Any], Any]]) -> None:
            if not logger._is_enabled():
                return
            record, context = entry.record, entry.context
            timestamp, observed = int(record.created * 1e9), time.time_ns()
            severity = std_to_otel(record.levelno)
            severity_text = severity_texts.get(record.levelname, record.levelname)
            readable = None
            logger._logger_metrics.emit_log()
            for put, encoder in queues:
                if encoder is not None:
                    try:
                        put(encoder.encode_log_record(
                            logger.resource, logger.instrumentation_scope, timestamp, severity.value,
                            severity_text, entry.message, attributes,
                            int(context.trace_flags) if context else 0, context.trace_id if context else 0,
                            context.span_id if context else 0, observed, event_name))
                        continue
                    except Exception as err:  # this record then goes as the SDK's record
                        _report_once(err)
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
                                                 limits=logger._log_record_limits)
                put(readable)

        # ---- flushing
        def drain(self, timeout: float = 5.0) -> bool:
            """Wait (at most ``timeout`` s) until every queued record is exported and printed."""
            if os.getpid() != self._pid:
                self._after_fork()
            deadline = time.monotonic() + timeout
            with self._done:
                while self._queue or self._busy:
                    if not self._worker.is_alive():
                        self._process(self._queue)
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

        def _after_fork(self) -> None:
            # The worker thread does not exist in a forked child: start the child's own.
            self._dozing, self._busy, self._stopping = False, False, False
            self._start_worker()

    return BridgeHandler


_restart_after_fork: weakref.WeakSet[Any] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for handler in list(_restart_after_fork):
        try:
            handler._after_fork()
        except Exception:  # never let telemetry break a fork
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_reported_errors: set[str] = set()


def _report_once(err: Exception) -> None:
    kind = type(err).__name__
    if kind not in _reported_errors:
        _reported_errors.add(kind)
        sys.stderr.write(f"otel-distro: a log record could not be exported or printed (further "
                         f"{kind} errors not reported): {err}\n")


_bridge: Any = None
_stepped_aside: list[tuple[logging.Handler, int]] = []


def bridge() -> logging.Handler | None:
    """The installed bridge handler, if any."""
    return _bridge


def install_bridge(provider: LoggerProvider, level: int, *, export: bool = True,
                   console: ConsoleWriter | None = None) -> logging.Handler:
    """Put the OpenTelemetry handler on the root logger, once per process."""
    global _bridge
    if _bridge is not None:
        return _bridge
    handler = _bridge_handler_class()(level, provider, export=export, console=console)
    logging.getLogger().addHandler(handler)
    _keep_through_reconfiguration()
    _bridge = handler
    _take_over_console()
    return handler


def _take_over_console() -> None:
    """With a distro console, the root's plain stdout/stderr handlers step aside."""
    handler = _bridge
    if handler is None or handler.console is None:
        return
    root = logging.getLogger()
    for other in list(root.handlers):
        if other is not handler and is_console_handler(other):
            root.removeHandler(other)
            if not _stepped_aside:  # write where the app's console went
                handler.console.stream = functools.partial(getattr, other, "stream")
            _stepped_aside.append((other, 0))


def remove_bridge() -> None:
    global _bridge
    if _bridge is not None:
        handler, _bridge = _bridge, None
        logging.getLogger().removeHandler(handler)
        handler.stop()
        root = logging.getLogger()
        for other, _ in _stepped_aside:
            if other not in root.handlers:
                root.addHandler(other)
        _stepped_aside.clear()


def _keep_through_reconfiguration() -> None:
    # basicConfig does nothing when the root logger has a handler, and dictConfig
    # may drop root handlers: step the bridge aside during the call, then put it back.
    def guard(config_fn: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(config_fn, "_otel_distro_guarded", False):
            return config_fn

        @functools.wraps(config_fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            root = logging.getLogger()
            current = _bridge
            present = current is not None and current in root.handlers
            if present:
                root.removeHandler(current)
            try:
                return config_fn(*args, **kwargs)
            finally:
                if present and current not in root.handlers:
                    root.addHandler(current)
                if present:
                    _take_over_console()

        guarded._otel_distro_guarded = True  # type: ignore[attr-defined]
        return guarded

    logging.basicConfig = guard(logging.basicConfig)
    logging.config.dictConfig = guard(logging.config.dictConfig)
    logging.config.fileConfig = guard(logging.config.fileConfig)
