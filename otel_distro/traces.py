"""The tracer provider: sampler from the standard variables, batch export over OTLP/HTTP."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from otel_distro import forksafe, redaction
from otel_distro.settings import Settings, export_file


def sampler(settings: Settings) -> Sampler:
    name, ratio = settings.sampler, settings.sampler_arg
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def exporters(settings: Settings) -> list[SpanExporter]:
    chosen: list[SpanExporter] = []
    for name in settings.traces_exporter:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter(endpoint=settings.signal_endpoint("traces"),
                                        timeout=settings.otlp_timeout_ms / 1000)
            chosen.append(forksafe.track(exporter))
        elif name == "file":
            from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter

            chosen.append(FileSpanExporter(export_file(settings, "traces")))
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            chosen.append(ConsoleSpanExporter())
    return chosen


def build(settings: Settings, resource: Resource,
          span_exporters: Sequence[SpanExporter] | None = None) -> TracerProvider:
    """A provider with one batch processor per exporter (the settings' unless given)."""
    provider = TracerProvider(resource=resource, sampler=sampler(settings), shutdown_on_exit=False)
    redactor = redaction.from_settings(settings)  # runs in the batch thread, on copies
    for exporter in exporters(settings) if span_exporters is None else span_exporters:
        provider.add_span_processor(BatchSpanProcessor(redaction.wrap_span_exporter(exporter, redactor)))
    return provider
