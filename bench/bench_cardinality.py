"""Memory under a cardinality attack: 1,000,000 distinct values on an HTTP attribute and a business meter.

    python bench/bench_cardinality.py [--values 1000000]

Each attack runs in its own interpreter configured by ``otel_distro.configure()``
(metrics over OTLP/HTTP to the repository's test receiver, every 2 s; span and
log export off so that the run measures what is *kept*: spans are not
retained by the SDK once exported, metric series are):

- http: a FastAPI app with the distro's lean middleware, driven in-process
  through ASGI: requests alternate between ``/items/{i}?q={i}`` (a route
  template, a distinct path and query each time) and ``/missing/{i}`` (no route:
  404, a distinct path each time);
- business: ``otel_distro.business.counter("card.events", attributes=["customer"])``
  with a distinct ``customer`` value each time (the limit is
  ``OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES``, default 100; the rest becomes ``other``).

Printed: RSS (VmRSS) after a 1,000-value warm-up and after the attack, the
number of series of the metric in the last export, and whether an overflow
series (``other`` / ``otel.metric.overflow``) is present.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def attack_http(values: int) -> tuple[float, float]:
    import asyncio

    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    def scope(i: int) -> dict:
        path, query = (f"/items/{i}", f"q={i}".encode()) if i % 2 else (f"/missing/{i}", b"")
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
                "root_path": "", "query_string": query, "headers": [(b"host", b"shop")],
                "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}

    async def run(start: int, stop: int) -> None:
        for i in range(start, stop):
            await app(scope(i), receive, send)

    asyncio.run(run(0, 1000))
    before = rss_mb()
    asyncio.run(run(1000, values))
    return before, rss_mb()


def attack_business(values: int) -> tuple[float, float]:
    from otel_distro import business

    events = business.counter("card.events", unit="{event}", attributes=["customer"])
    for i in range(1000):
        events.add(1, customer=f"c{i}")
    before = rss_mb()
    for i in range(1000, values):
        events.add(1, customer=f"c{i}")
    return before, rss_mb()


def child(kind: str, values: int) -> None:
    import logging

    logging.disable(logging.WARNING)  # the business meter warns once per key; keep the output clean
    import otel_distro

    telemetry = otel_distro.configure(service_name="cardinality", traces_exporter=(),
                                      logs_exporter=(), system_metrics=False,
                                      metric_export_interval_ms=2000)
    if kind == "http":
        from otel_distro.integrations import asgi

        asgi.instrument(telemetry.settings.excluded_urls)
    began = time.perf_counter()
    before, after = (attack_http if kind == "http" else attack_business)(values)
    seconds = time.perf_counter() - began
    telemetry.meter_provider.force_flush(10_000)
    print(json.dumps({"before": before, "after": after, "seconds": seconds}), flush=True)
    otel_distro.shutdown()


def series(receiver, name: str) -> list:
    exports = receiver.metric(name)
    return exports[-1].points if exports else []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--values", type=int, default=1_000_000)
    parser.add_argument("--child", choices=("http", "business"))
    args = parser.parse_args()
    if args.child:
        child(args.child, args.values)
        return
    from tests.otlp_test_receiver import OtlpTestReceiver

    for kind, metric, key in (("business", "card.events", "customer"),
                              ("http", "http.server.request.duration", "http.route")):
        with OtlpTestReceiver() as receiver:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
            env.update({"PYTHONPATH": str(ROOT), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint})
            done = subprocess.run([sys.executable, __file__, "--child", kind,
                                   "--values", str(args.values)], env=env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise RuntimeError(done.stderr)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            points = series(receiver, metric)
            keys = sorted({k for p in points for k in p.attributes})
            values = {str(p.attributes.get(key)) for p in points}
            overflow = any(p.attributes.get(key) == "other"
                           or p.attributes.get("otel.metric.overflow") for p in points)
            print(f"{kind}: {args.values:,} distinct values in {result['seconds']:.0f} s; "
                  f"RSS {result['before']:.1f} -> {result['after']:.1f} MB "
                  f"(+{result['after'] - result['before']:.1f} MB); {metric}: {len(points)} series, "
                  f"{len(values)} distinct {key} values {sorted(values)[:6]}; "
                  f"overflow series: {'yes' if overflow else 'no'}; point attribute keys: {keys}")


if __name__ == "__main__":
    main()
