"""Our Collector's CPU and memory per 1,000 spans/s, through the shipped pipeline (`otel-distro stack up`).

    python bench/collector_throughput.py [--rates 500 1000 2000] [--seconds 30]

Starts the whole stack on free loopback ports (the binaries from `otel-distro stack build`), then, per rate,
sends spans over OTLP/HTTP from emitter processes (SDK, batch processor; 3 spans a trace, 10 attributes a
span), and samples the Collector's CPU time and resident memory (psutil). The Collector does everything it
does in production: memory_limiter, resource_detection, redaction (every value matched against the secret
patterns), batch, span_metrics, the export to Jaeger. Prints one row per rate; figures in docs/collector.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

from otel_distro import stack_build, stack_up

_EMITTER = r'''
import sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
endpoint, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
provider = TracerProvider(resource=Resource.create({"service.name": "bench-emitter"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint + "/v1/traces"),
                                               max_queue_size=65536, max_export_batch_size=2048))
tracer = provider.get_tracer("bench")
attrs = {f"attr.{i}": f"value-{i}-abcdefgh" for i in range(8)}
attrs.update({"http.request.method": "GET", "http.response.status_code": 200})
start, sent = time.monotonic(), 0
while time.monotonic() - start < seconds:
    with tracer.start_as_current_span("GET /items", attributes=attrs):
        with tracer.start_as_current_span("SELECT items", attributes=attrs):
            pass
        with tracer.start_as_current_span("render", attributes=attrs):
            pass
    sent += 3
    ahead = sent / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
provider.shutdown()
print(sent)
'''


def _accepted_spans(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("otelcol_receiver_accepted_spans"))


def measure(running: stack_up.RunningStack, rate: float, seconds: float, emitters: int) -> dict[str, float]:
    collector = psutil.Process(running.processes["collector"].pid)
    endpoints = running.endpoints()
    before_spans = _accepted_spans(endpoints["collector_metrics"])
    cpu_before = sum(collector.cpu_times()[:2])
    started = time.monotonic()
    children = [subprocess.Popen([sys.executable, "-c", _EMITTER, endpoints["otlp_http"], str(rate / emitters),
                                  str(seconds)], stdout=subprocess.PIPE, text=True) for _ in range(emitters)]
    peak_rss = 0
    while any(c.poll() is None for c in children):
        peak_rss = max(peak_rss, collector.memory_info().rss)
        time.sleep(0.5)
    time.sleep(2)  # the last batch through the pipeline
    wall = time.monotonic() - started
    cpu = sum(collector.cpu_times()[:2]) - cpu_before
    spans = _accepted_spans(endpoints["collector_metrics"]) - before_spans
    achieved = spans / wall
    return {"target_rate": rate, "achieved_rate": achieved, "cpu_cores": cpu / wall,
            "cpu_cores_per_1000": cpu / wall / achieved * 1000, "peak_rss_mib": peak_rss / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--emitters", type=int, default=2)
    args = parser.parse_args()
    built = stack_build.find_built()
    if built is None:
        sys.exit("run `otel-distro stack build` first")
    with tempfile.TemporaryDirectory() as work:
        running = stack_up.start(Path(work), stack_up.choose_ports({}, free=True), built)
        try:
            idle_rss = psutil.Process(running.processes["collector"].pid).memory_info().rss / 2**20
            print(f"Collector idle RSS: {idle_rss:.0f} MiB")
            print("target spans/s  achieved  CPU cores  cores per 1000 spans/s  peak RSS MiB")
            for rate in args.rates:
                row = measure(running, rate, args.seconds, args.emitters)
                print(f"{row['target_rate']:>14.0f}  {row['achieved_rate']:>8.0f}  {row['cpu_cores']:>9.3f}  "
                      f"{row['cpu_cores_per_1000']:>22.3f}  {row['peak_rss_mib']:>12.0f}", flush=True)
        finally:
            running.stop()


if __name__ == "__main__":
    main()
