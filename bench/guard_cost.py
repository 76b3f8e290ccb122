"""What the FastPath guard adds to the request path's two fast paths (the SERVER span start, the histogram point).

    python bench/guard_cost.py [--calls 20000] [--rounds 7]

Each fast path is called directly and through its guard (otel_distro._sdk_private), interleaved round by round in
one process; the report gives per-call minima and medians and their differences. The guard is one call frame and
one ``try``: its cost is the difference, the rest is the fast path's own work.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

from otel_distro._sdk_private import histogram_points, server_span

SPAN_ATTRIBUTES = {"http.request.method": "GET", "url.scheme": "http", "url.path": "/items/1",
                   "network.protocol.version": "1.1"}
POINT_KEY = ("GET", "http", "/items/{id}", 200, None)
POINT_ATTRIBUTES = {"http.request.method": "GET", "url.scheme": "http", "http.route": "/items/{id}",
                    "http.response.status_code": 200}


def variants() -> dict[str, Callable[[], None]]:
    tracer = TracerProvider().get_tracer("bench")
    histogram = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench").create_histogram(
        "d", unit="s")
    sets: dict = {}
    histograms = (histogram,)
    # The SDK records this first point; the attribute set is learnt.
    histogram_points.RECORD(histograms, sets, (0.01,), POINT_KEY, POINT_ATTRIBUTES)
    return {
        "span start, direct": lambda: server_span._start_lean(tracer, "GET", None, SPAN_ATTRIBUTES).end(),
        "span start, guarded": lambda: server_span.START(tracer, "GET", None, SPAN_ATTRIBUTES).end(),
        "histogram point, direct": lambda: histogram_points._record_direct(
            histograms, sets, (0.01,), POINT_KEY, POINT_ATTRIBUTES),
        "histogram point, guarded": lambda: histogram_points.RECORD(
            histograms, sets, (0.01,), POINT_KEY, POINT_ATTRIBUTES),
    }


def per_call_us(call: Callable[[], None], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    chosen = variants()
    times: dict[str, list[float]] = {name: [] for name in chosen}
    for _ in range(args.rounds):
        for name, call in chosen.items():
            times[name].append(per_call_us(call, args.calls))
    print(f"{'variant':26s} {'min µs':>8s} {'median µs':>10s}")
    for name, found in times.items():
        print(f"{name:26s} {min(found):8.2f} {statistics.median(found):10.2f}")
    for path in ("span start", "histogram point"):
        direct, guarded = times[f"{path}, direct"], times[f"{path}, guarded"]
        print(f"guard on the {path}: {min(guarded) - min(direct):+.2f} µs (minima), "
              f"{statistics.median(guarded) - statistics.median(direct):+.2f} µs (medians)")


if __name__ == "__main__":
    main()
