"""Per-request cost of HTTP instrumentation, driven in-process through ASGI (no sockets).

    python bench/asgi_overhead.py [--requests 4000] [--rounds 5]

Each variant runs in its own interpreter (instrumentation is process-global),
the variants interleaved round by round; the report gives medians of the
per-round µs/request and the difference to the bare app. Telemetry goes to a
batch processor and a metric reader with exporters that drop the data, so
the figures include the SDK's own work but no network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

VARIANTS = ("bare", "contrib", "contrib-no-subspans", "fastapi-native", "fastapi-native-lean",
            "otel-distro")

_CHILD = r'''
import asyncio, json, sys, time, os
variant, requests = sys.argv[1], int(sys.argv[2])
from opentelemetry import trace, metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

class Drop(SpanExporter):
    def export(self, spans): return SpanExportResult.SUCCESS

if variant != "bare" and variant != "otel-distro":
    tp = TracerProvider(); tp.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=100000))
    trace.set_tracer_provider(tp)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
if variant == "otel-distro":
    os.environ.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="prometheus",
                      OTEL_EXPORTER_PROMETHEUS_PORT="0", OTEL_LOGS_EXPORTER="none",
                      OTEL_SERVICE_NAME="bench", OTEL_DISTRO_SYSTEM_METRICS="false")
    import otel_distro
    from otel_distro.distro import OtelDistro
    telemetry = otel_distro.configure()
    telemetry.tracer_provider.add_span_processor(BatchSpanProcessor(Drop(), max_queue_size=100000))
from fastapi import FastAPI
kwargs = {}
if variant == "fastapi-native-lean":
    kwargs["telemetry"] = {"operation_spans": False, "logs": False}
if variant in ("bare", "contrib", "contrib-no-subspans"):
    kwargs["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
if variant == "otel-distro":  # the distro patches FastAPI before the app exists, as under the wrapper
    from otel_distro.integrations import asgi
    asgi.instrument(telemetry.settings.excluded_urls)
app = FastAPI(**kwargs)

@app.get("/items/{item_id}")
async def item(item_id: int):
    return {"id": item_id}

if variant.startswith("contrib"):
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"] if variant.endswith("subspans") else None)

scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
         "scheme": "http", "path": "/items/7", "raw_path": b"/items/7", "query_string": b"",
         "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 5000),
         "server": ("127.0.0.1", 8000)}

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    pass

async def main():
    for _ in range(300):
        await app(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(requests):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / requests * 1e6

print(json.dumps({"variant": variant, "us": asyncio.run(main())}))
'''


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    variants = args.variants.split(",")
    results: dict[str, list[float]] = {v: [] for v in variants}
    for _ in range(args.rounds):
        for variant in variants:
            out = subprocess.run([sys.executable, "-c", _CHILD, variant, str(args.requests)],
                                 capture_output=True, text=True, check=True,
                                 cwd=Path(__file__).resolve().parents[1])
            results[variant].append(json.loads(out.stdout.strip().splitlines()[-1])["us"])
    bare = statistics.median(results["bare"]) if "bare" in results else None
    print(f"{'variant':<22} {'µs/request':>11} {'+µs vs bare':>12} {'x bare':>7}")
    for variant in variants:
        median = statistics.median(results[variant])
        extra = f"{median - bare:+.1f}" if bare else ""
        ratio = f"{median / bare:.2f}" if bare else ""
        print(f"{variant:<22} {median:>11.1f} {extra:>12} {ratio:>7}")


if __name__ == "__main__":
    main()
