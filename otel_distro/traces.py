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

from otel_distro import redaction, signal_exporters
from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import span_end_batches
from otel_distro.settings import BUILTIN_SAMPLERS, SAMPLER_ENTRY_POINTS, Settings


def sampler(settings: Settings) -> Sampler:
    name, ratio = settings.sampler, settings.sampler_arg
    if name not in BUILTIN_SAMPLERS:
        return registered_sampler(settings)
    root: Sampler
    if name.endswith("always_off"):
        root = ALWAYS_OFF
    elif name.endswith("traceidratio"):
        root = TraceIdRatioBased(ratio)
    else:
        root = ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def registered_sampler(settings: Settings) -> Sampler:
    """The sampler an ``opentelemetry_traces_sampler`` entry point makes, given OTEL_TRACES_SAMPLER_ARG as text
    (as the SDK's own configurator does; an empty string when unset); if it fails, the default sampler."""
    from importlib.metadata import entry_points

    given = not settings.sources.get("sampler_arg", "default").startswith("default")
    argument = repr(settings.sampler_arg) if given else ""
    try:
        (entry_point, *_) = entry_points(group=SAMPLER_ENTRY_POINTS, name=settings.sampler)
        made = entry_point.load()(argument)
        if not isinstance(made, Sampler):
            raise TypeError(f"{entry_point.value} made {made!r}, not a Sampler")
        return made
    except Exception as err:
        report_internal_error("traces.sampler", f"the sampler {settings.sampler!r} could not be made; using "
                              "parentbased_always_on", err)
        return ParentBased(ALWAYS_ON)


def exporters(settings: Settings) -> list[SpanExporter]:
    return signal_exporters.chosen_exporters(settings, "traces")


def build(settings: Settings, resource: Resource,
          span_exporters: Sequence[SpanExporter] | None = None) -> TracerProvider:
    """A provider with one batch processor per exporter (the settings' unless given)."""
    provider = TracerProvider(resource=resource, sampler=sampler(settings), shutdown_on_exit=False)
    span_end_batches.install(provider)  # first: it hands its waiting spans on before the others flush
    redactor = redaction.from_settings(settings)  # runs in the batch thread, on copies
    for exporter in exporters(settings) if span_exporters is None else span_exporters:
        provider.add_span_processor(BatchSpanProcessor(redaction.wrap_span_exporter(exporter, redactor)))
    return provider
