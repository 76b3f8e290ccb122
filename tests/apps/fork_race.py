"""Parent and forked child export spans at the same time, one flush per span.

Before the fork the parent's exporter holds a pooled keep-alive connection;
a child that reused it would interleave its requests with the parent's.
"""

import os
import sys

from opentelemetry import trace

import otel_distro

count = int(sys.argv[1])
otel_distro.configure(service_name="fork-race", metrics_exporter=(), logs_exporter=(),
                      system_metrics=False)
provider = trace.get_tracer_provider()
tracer = trace.get_tracer("fork-race")
tracer.start_span("before-fork").end()
provider.force_flush()


def burst(name: str) -> None:
    for _ in range(count):
        tracer.start_span(name).end()
        provider.force_flush(5000)


child = os.fork()
if child == 0:
    burst("child")
    provider.force_flush(5000)
    os._exit(0)
burst("parent")
os.waitpid(child, 0)
otel_distro.shutdown()
