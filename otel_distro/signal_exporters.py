"""Which exporter class each OTEL_{TRACES,LOGS}_EXPORTER name stands for, and making them from the settings.

Metrics are not here: their readers (periodic OTLP, Prometheus pull) differ in kind, not only in class.
"""

from __future__ import annotations

import importlib
from typing import Any

from otel_distro import forksafe
from otel_distro.settings import Settings, export_file

# Imported only when chosen: each exporter module pulls in its own dependencies.
_CLASSES: dict[str, dict[str, tuple[str, str]]] = {
    "traces": {
        "otlp": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter"),
        "file": ("opentelemetry.exporter.otlp.json.file.trace_exporter", "FileSpanExporter"),
        "console": ("opentelemetry.sdk.trace.export", "ConsoleSpanExporter"),
    },
    "logs": {
        "otlp": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter"),
        "file": ("opentelemetry.exporter.otlp.json.file._log_exporter", "FileLogExporter"),
        "console": ("opentelemetry.sdk._logs.export", "ConsoleLogRecordExporter"),
    },
}


def chosen_exporters(settings: Settings, signal: str) -> list[Any]:
    """The exporters the settings name for ``signal`` ("traces" or "logs"), in the order named."""
    made: list[Any] = []
    for name in getattr(settings, f"{signal}_exporter"):
        if name not in _CLASSES[signal]:
            continue  # "none": the settings admit no other name
        module, class_name = _CLASSES[signal][name]
        exporter_class = getattr(importlib.import_module(module), class_name)
        if name == "otlp":
            made.append(forksafe.track(exporter_class(endpoint=settings.signal_endpoint(signal),
                                                      timeout=settings.signal_timeout_s(signal))))
        elif name == "file":
            made.append(exporter_class(export_file(settings, signal)))
        else:
            made.append(exporter_class())
    return made
