"""Console log lines written by the distro: ``OTEL_DISTRO_LOG_FORMAT=json`` or ``text``.

One line per record, with the trace and span id of the request that logged it:

    {"timestamp": "2026-11-05T10:00:00.123456Z", "level": "INFO", "logger": "shop",
     "message": "order created", "service.name": "shop", "trace_id": "4bf9...",
     "span_id": "00f0...", "item_id": 2, ...}

Extras (``log.info(..., extra={...})``) are fields of their own; an exception
adds ``exception.type``, ``exception.message`` and ``exception.stacktrace``.
Every value goes through the redaction rules first.

The lines are built and written by the log pipeline's worker thread
(:mod:`otel_distro.logs`), never by the thread that logs: the request path
only queues the record. JSON encoding and the choice of extra fields come
from python-json-logger (``pythonjsonlogger.json.JsonFormatter``).
"""

from __future__ import annotations

import logging
import sys
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
# Nor are the ids the contrib logging instrumentation's record factory adds.
_NOT_EXTRA = RECORD_FIELDS | {"otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName"}


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
    """What the logging thread captured: the record, its message, its span context (if valid)."""

    __slots__ = ("context", "message", "record")

    def __init__(self, record: logging.LogRecord, message: str, context: Any) -> None:
        self.record = record
        self.message = message
        self.context = context


class ConsoleFormat:
    """Builds one console line from an Entry (redacted when a redactor is given)."""

    def __init__(self, service_name: str, redactor: Redactor | None) -> None:
        # Imported here: a service with the console format off never loads it (~1 ms of start-up).
        from pythonjsonlogger.core import merge_record_extra
        from pythonjsonlogger.json import JsonFormatter

        self.service_name = service_name
        self.redactor = redactor
        self._json = JsonFormatter()
        self._merge_record_extra = merge_record_extra

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
        extras: dict[str, Any] = {}
        self._merge_record_extra(record, extras, reserved=_NOT_EXTRA)
        for key, value in extras.items():
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

    def line(self, entry: Entry) -> str:
        return self._line(entry)

    def write(self, lines: list[str]) -> None:
        if not lines:
            return
        stream = self.stream()
        stream.write("\n".join(lines) + "\n")
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
