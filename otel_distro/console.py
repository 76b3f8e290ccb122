"""Console log lines written by the distro: ``OTEL_DISTRO_LOG_FORMAT=json`` or ``text``.

One line per record, with the trace and span id of the request that logged it:

    {"timestamp": "2026-11-05T10:00:00.123456Z", "level": "INFO", "logger": "shop",
     "message": "order created", "service.name": "shop", "trace_id": "4bf9...",
     "span_id": "00f0...", "item_id": 2, ...}

Extras (``log.info(..., extra={...})``) are fields of their own, as they were
when the record was made (a list changed after the call is printed as it was);
an exception
adds ``exception.type``, ``exception.message`` and ``exception.stacktrace``.
Every value goes through the redaction rules first.

The lines are built and written by the log pipeline's worker thread
(:mod:`otel_distro.logs`): the request path only queues the record - unless
the bridge's queue is full, then the thread that logs writes its own line.
A line is never dropped. JSON encoding comes from python-json-logger
(``pythonjsonlogger.json.JsonFormatter``).
"""

from __future__ import annotations

import logging
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from otel_distro.redaction import Redactor

# What a LogRecord holds of its own (and Formatter adds; taskName: Python 3.12+):
# everything else in its __dict__ came from ``extra``. The log bridge uses it too.
RECORD_FIELDS = frozenset({
    "args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName", "levelname", "levelno",
    "lineno", "message", "module", "msecs", "msg", "name", "pathname", "process", "processName",
    "relativeCreated", "stack_info", "taskName", "thread", "threadName"})
# Nor are the ids the contrib logging instrumentation's record factory adds (not printed as extras).
_NOT_PRINTED = frozenset({"otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName"})
# The size of a record's __dict__ without extras: a larger one may hold some.
_PLAIN_RECORD_SIZE = len(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_IMMUTABLE = (str, int, float, bool, bytes, type(None))


def captured_extras(record: logging.LogRecord) -> dict[str, Any] | None:
    """The record's ``extra`` fields as they are now (containers copied), or None when it has none.

    Called in the thread that logs: the worker prints and exports them later, and a list the
    application changes after the call must go out as it was when logged.
    """
    fields = record.__dict__
    # A formatter that ran first (the app's console handler) adds message and asctime: not extras.
    if len(fields) - ("message" in fields) - ("asctime" in fields) <= _PLAIN_RECORD_SIZE:
        return None
    keys = fields.keys() - RECORD_FIELDS
    if not keys:
        return None
    if len(keys) > 1:  # in the order they were given
        keys = [key for key in fields if key in keys]
    return {key: _frozen(fields[key]) for key in keys}


def _frozen(value: Any, depth: int = 0) -> Any:
    """A copy of the containers in ``value`` (to a few levels); other values are kept as they are."""
    if isinstance(value, _IMMUTABLE) or depth > 4:
        return value
    if isinstance(value, (list, tuple)):
        return type(value)(_frozen(v, depth + 1) for v in value) if type(value) in (list, tuple) else list(value)
    if isinstance(value, dict):
        return {k: _frozen(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [_frozen(v, depth + 1) for v in value]
    if isinstance(value, bytearray):
        return bytes(value)
    return value


_last_second: tuple[int, str] = (-1, "")  # one tuple: read and replaced whole, from any thread


def _timestamp(created: float) -> str:
    """RFC 3339, UTC, microseconds: 2026-11-05T10:00:00.123456Z."""
    global _last_second
    second = int(created)
    micros = round((created - second) * 1e6)  # rounded as datetime.fromtimestamp does
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    last = _last_second
    if last[0] != second:  # formatting the date is the costly part: once per second
        last = _last_second = (second, datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S."))
    return f"{last[1]}{micros:06d}Z"


class Entry:
    """What the logging thread captured: the record, its message, its span context (if valid), its extras."""

    __slots__ = ("context", "extras", "message", "record")

    def __init__(self, record: logging.LogRecord, message: str, context: Any,
                 extras: dict[str, Any] | None = None) -> None:
        self.record = record
        self.message = message
        self.context = context
        self.extras = extras


class ConsoleFormat:
    """Builds one console line from an Entry (redacted when a redactor is given)."""

    def __init__(self, service_name: str, redactor: Redactor | None) -> None:
        # Imported here: a service with the console format off never loads it (~1 ms of start-up).
        from pythonjsonlogger.json import JsonFormatter

        self.service_name = service_name
        self.redactor = redactor
        self._json = JsonFormatter()

    def fields(self, entry: Entry) -> dict[str, Any]:
        record, r = entry.record, self.redactor
        data: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": r.name(record.name) if r else record.name,
            "message": r.text(entry.message) if r else entry.message,
            "service.name": self.service_name,
        }
        if entry.context is not None:
            data["trace_id"] = f"{entry.context.trace_id:032x}"
            data["span_id"] = f"{entry.context.span_id:016x}"
        for key, value in (entry.extras or {}).items():
            if key in _NOT_PRINTED or str(key).startswith("_"):
                continue
            shown = r.key(key) if r else key
            if shown not in data:
                data[shown] = r.value(key, _plain(value)) if r else value
        if record.exc_info and record.exc_info[0] is not None:
            kind, exc, tb = record.exc_info
            message = str(exc) if exc is not None else ""
            stack = "".join(traceback.format_exception(kind, exc, tb))
            data["exception.type"] = kind.__name__
            data["exception.message"] = r.text(message) if r else message
            data["exception.stacktrace"] = r.text(stack) if r else stack
        if record.stack_info:
            data["stack_info"] = r.text(record.stack_info) if r else record.stack_info
        return data

    def json(self, entry: Entry) -> str:
        return self._json.jsonify_log_record(self.fields(entry))

    def text(self, entry: Entry) -> str:
        data = self.fields(entry)
        head = f"{data.pop('timestamp')} {data.pop('level'):<8} {data.pop('logger')}"
        message = data.pop("message")
        data.pop("service.name")
        stack = data.pop("exception.stacktrace", None)
        data.pop("exception.type", None)
        data.pop("exception.message", None)
        ids = ""
        if "trace_id" in data:
            ids = f" [trace_id={data.pop('trace_id')} span_id={data.pop('span_id')}]"
        rest = "".join(f" {k}={v!r}" if isinstance(v, str) else f" {k}={v}" for k, v in data.items())
        line = f"{head}{ids} {message}{rest}"
        return f"{line}\n{stack.rstrip()}" if stack else line


def _plain(value: Any) -> Any:
    """Values the redactor looks into are kept; anything else is judged by its text."""
    if isinstance(value, (str, int, float, bool, bytes, list, tuple, dict)) or value is None:
        return value
    return str(value)


class ConsoleWriter:
    """Writes lines to a stream (resolved at each write: sys.stderr may be replaced)."""

    def __init__(self, style: str, fmt: ConsoleFormat,
                 stream: Callable[[], IO[str]] | None = None) -> None:
        self.style = style
        self.format = fmt
        self._line = fmt.json if style == "json" else fmt.text
        self.stream = stream or (lambda: sys.stderr)
        # The worker and, when the bridge's queue is full, the threads that log write here.
        self._lock = threading.Lock()

    def line(self, entry: Entry) -> str:
        return self._line(entry)

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        text = "\n".join(lines) + "\n"
        with self._lock:
            stream = self.stream()
            stream.write(text)
            stream.flush()


def from_settings(settings: Any, service_name: str, redactor: Redactor | None) -> ConsoleWriter | None:
    """The console writer OTEL_DISTRO_LOG_FORMAT asks for, or None for ``off``."""
    if settings.log_format not in ("json", "text"):
        return None
    return ConsoleWriter(settings.log_format, ConsoleFormat(service_name, redactor))


def is_console_handler(handler: logging.Handler) -> bool:
    """A plain StreamHandler writing to this process's stdout or stderr."""
    if type(handler) is not logging.StreamHandler:
        return False
    stream = getattr(handler, "stream", None)
    return stream is not None and stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
