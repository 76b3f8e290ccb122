"""A stdlib log record as OpenTelemetry attributes: its extras (as captured when logged), exception and event name."""

from __future__ import annotations

import traceback
from typing import Any

from otel_distro.console import Entry

_PLAIN = (str, bool, int, float, bytes)


def _attribute_value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: plain values kept, others as text."""
    if isinstance(value, _PLAIN) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return value
    return str(value)


def record_attributes(entry: Entry) -> tuple[dict[str, Any], str | None]:
    """A record's ``extra`` fields and exception as attributes, and its event name.

    The event name comes from ``otel.event.name`` (stable) or ``event.name``
    (deprecated), which are not kept as attributes; ``None`` values are left out.
    """
    record = entry.record
    attributes = {key: _attribute_value(value) for key, value in (entry.extras or {}).items()
                  if value is not None}
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
