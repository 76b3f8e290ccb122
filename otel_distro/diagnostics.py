"""How the distro talks about its own trouble: rarely, clearly, never to the host app's cost.

Its own warnings (the ``otel_distro`` logger) and the SDK's (``opentelemetry``: failed exports,
instrumentations that refused the installed library) always reach stderr through one handler of the
distro's - whatever the application did with logging and whatever the console mode: as JSON lines like
the console's with OTEL_DISTRO_LOG_FORMAT=json, as text lines otherwise. They are not handed to the
application's handlers; the distro's own are exported by the log bridge too, the SDK's are not (a failing
export would feed itself).

Exporters log a warning or a traceback for every failed batch; with the
Collector down that is a line per second per signal. A filter on the SDK's
exporter loggers lets one line through per interval and counts the rest.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

# Loggers of the SDK and exporters that report export failures.
EXPORT_LOGGER_PREFIXES = (
    "opentelemetry.exporter",
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.sdk.metrics._internal.export",
    "opentelemetry.sdk._logs._internal.export",
)


class RateLimitFilter(logging.Filter):
    """Lets one WARNING-or-worse record per logger through every ``interval`` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        if any(mark in record.getMessage() for mark in _TLS_FAILURES):
            return False  # one line for every signal says so instead (otlp_http_sender)
        now = self._clock()
        with self._lock:
            last = self._last.get(record.name)
            if last is not None and now - last < self.interval:
                self._suppressed[record.name] = self._suppressed.get(record.name, 0) + 1
                return False
            self._last[record.name] = now
            suppressed = self._suppressed.pop(record.name, 0)
        # One line, no traceback per batch: the message says what failed.
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__}: {exc})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        note = f"{suppressed} similar message(s) suppressed; " if suppressed else ""
        record.msg = (f"{record.getMessage()} [{note}otel-distro shows one such line per "
                      f"{self.interval:g}s: OTEL_DISTRO_EXPORT_ERROR_INTERVAL]")
        record.args = None
        return True


_installed: RateLimitFilter | None = None
_TLS_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def rate_limit_export_errors(interval: float) -> RateLimitFilter:
    """Attach one shared filter to every export logger (created now if need be)."""
    global _installed
    from otel_distro._sdk_private import otlp_http_sender

    otlp_http_sender.tls_interval[0] = interval
    if _installed is None:
        _installed = RateLimitFilter(interval)
    _installed.interval = interval
    names = set(EXPORT_LOGGER_PREFIXES)
    names.update(name for name in logging.Logger.manager.loggerDict
                 if name.startswith(EXPORT_LOGGER_PREFIXES))
    for name in names:
        logger = logging.getLogger(name)
        if _installed not in logger.filters:
            logger.addFilter(_installed)
    return _installed


# The loggers whose records are the distro's diagnostics.
DIAGNOSTIC_LOGGERS = ("otel_distro", "opentelemetry")
# opentelemetry-instrument says so whenever the upstream configurator is installed beside ours: expected.
_LOADER = "opentelemetry.instrumentation.auto_instrumentation._load"
_EXPECTED_FROM_LOADER = "Configuration of configurator not loaded"


class DiagnosticsHandler(logging.Handler):
    """Writes diagnostics to stderr: a console's line format when there is one, else a plain line.

    ``console`` is the distro's console writer (json or text) or None; ``redactor`` masks secrets in
    plain lines (the console's lines are redacted by its own format).
    """

    def __init__(self, console: Any = None, redactor: Any = None,
                 stream: Callable[[], IO[str]] | None = None) -> None:
        super().__init__(logging.WARNING)
        self.console = console
        self.redactor = redactor
        self.stream = stream or (lambda: sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == _LOADER and record.getMessage().startswith(_EXPECTED_FROM_LOADER):
            return
        try:
            line = self._line(record)
            stream = self.stream()
            stream.write(line + "\n")
            stream.flush()
        except Exception:  # diagnostics must never break the app; the stdlib prints what failed
            self.handleError(record)

    def _line(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message = f"{message} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        if self.console is not None:
            from otel_distro.console import Entry

            return self.console.line(Entry(record, message, None))
        if not message.startswith("otel-distro:"):
            message = f"otel-distro: [{record.name}] {message}"
        return self.redactor.text(message) if self.redactor is not None else message


_diagnostics: DiagnosticsHandler | None = None


def show_diagnostics(console: Any = None, redactor: Any = None) -> DiagnosticsHandler:
    """Route the distro's and the SDK's warnings to stderr through one handler (installed once, kept up to date)."""
    global _diagnostics
    if _diagnostics is None:
        _diagnostics = DiagnosticsHandler()
    _diagnostics.console, _diagnostics.redactor = console, redactor
    for name in DIAGNOSTIC_LOGGERS:
        logger = logging.getLogger(name)
        if _diagnostics not in logger.handlers:
            logger.addHandler(_diagnostics)
        logger.propagate = False
    return _diagnostics
