"""The logger provider and the bridge from stdlib ``logging`` to OpenTelemetry logs.

The bridge is one handler on the root logger, installed once per process,
and kept there when the application re-configures logging with
``basicConfig``/``dictConfig``/``fileConfig``. It leaves the application's
own handlers, and so its console output, as they were.
"""

from __future__ import annotations

import functools
import logging
import logging.config
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_distro import forksafe
from otel_distro.settings import Settings, export_file


def exporters(settings: Settings) -> list[LogRecordExporter]:
    chosen: list[LogRecordExporter] = []
    for name in settings.logs_exporter:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

            exporter = OTLPLogExporter(endpoint=settings.signal_endpoint("logs"),
                                       timeout=settings.otlp_timeout_ms / 1000)
            chosen.append(forksafe.track(exporter))
        elif name == "file":
            from opentelemetry.exporter.otlp.json.file._log_exporter import FileLogExporter

            chosen.append(FileLogExporter(export_file(settings, "logs")))
        elif name == "console":
            from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter

            chosen.append(ConsoleLogRecordExporter())
    return chosen


def build(settings: Settings, resource: Resource,
          log_exporters: Sequence[LogRecordExporter] | None = None) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters(settings) if log_exporters is None else log_exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    return provider


class _NotOurOwn(logging.Filter):
    """Keeps the SDK's own records (export failures) out of the export path: no feedback loop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("opentelemetry.")


_PLAIN = (str, bool, int, float, bytes)


def _attribute_value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: plain values kept, others as text."""
    if isinstance(value, _PLAIN) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, _PLAIN) for v in value):
        return value
    return str(value)


def _bridge_handler_class() -> type[logging.Handler]:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    class BridgeHandler(LoggingHandler):
        """The contrib handler, with ``extra`` values the SDK would reject turned into text."""

        def _get_attributes(self, record: logging.LogRecord) -> Any:
            attributes, event_name = super()._get_attributes(record)
            return {k: _attribute_value(v) for k, v in attributes.items()
                    if v is not None}, event_name

    return BridgeHandler


_bridge: logging.Handler | None = None


def bridge() -> logging.Handler | None:
    """The installed bridge handler, if any."""
    return _bridge


def install_bridge(provider: LoggerProvider, level: int) -> logging.Handler:
    """Put the OpenTelemetry handler on the root logger, once per process."""
    global _bridge
    if _bridge is not None:
        return _bridge
    handler = _bridge_handler_class()(level=level, logger_provider=provider)
    handler.addFilter(_NotOurOwn())
    logging.getLogger().addHandler(handler)
    _keep_through_reconfiguration()
    _bridge = handler
    return handler


def remove_bridge() -> None:
    global _bridge
    if _bridge is not None:
        logging.getLogger().removeHandler(_bridge)
        _bridge = None


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

        guarded._otel_distro_guarded = True  # type: ignore[attr-defined]
        return guarded

    logging.basicConfig = guard(logging.basicConfig)
    logging.config.dictConfig = guard(logging.config.dictConfig)
    logging.config.fileConfig = guard(logging.config.fileConfig)
