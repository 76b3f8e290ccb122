"""A program that starts telemetry in code, twice, and reports what got installed."""

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk._logs import LoggingHandler

import otel_distro
from otel_distro.logs.bridge import BridgeHandler

first = otel_distro.configure(service_name="coded")
second = otel_distro.configure(service_name="ignored")
provider = trace.get_tracer_provider()
with trace.get_tracer("coded").start_as_current_span("work"):
    logging.getLogger("coded").warning("from code")
print(json.dumps({
    "same": first is second,
    "span_processors": len(provider._active_span_processor._span_processors),
    "bridges": sum(isinstance(h, (BridgeHandler, LoggingHandler)) for h in logging.getLogger().handlers),
    "service": first.resource.attributes["service.name"],
}), flush=True)
otel_distro.shutdown()
