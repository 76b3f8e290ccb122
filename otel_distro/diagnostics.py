"""How the distro talks about its own trouble: rarely, clearly, never to the host app's cost.

Exporters log a warning or a traceback for every failed batch; with the
Collector down that is a line per second per signal. A filter on the SDK's
exporter loggers lets one line through per interval and counts the rest.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

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


def rate_limit_export_errors(interval: float) -> RateLimitFilter:
    """Attach one shared filter to every export logger (created now if need be)."""
    global _installed
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
