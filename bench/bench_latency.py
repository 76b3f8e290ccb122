"""Latency overhead on an endpoint doing 5 ms of work, bare vs otel-distro, under uvicorn.

    python bench/bench_latency.py [--requests 400] [--rounds 3]

The app is tests/apps/latency_app.py: GET /sleep/{n} awaits asyncio.sleep(0.005),
GET /busy/{n} busy-loops 5 ms. Each variant is a fresh uvicorn process on
127.0.0.1 (one worker), loaded by one keep-alive client sending requests back to
back; the figure is the client-side wall time per request (median of the
requests of a round, then the median of the rounds). Variants are interleaved
round by round. otel-distro runs with all signals on, 100% sampling, OTLP/HTTP
to the repository's test receiver in this process.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402 - the repo's own test receiver

sys.path.insert(0, str(ROOT / "bench"))
from http_server_cpu import BIN, start_server, stop_server  # noqa: E402 - the benchmark next to this one

VARIANTS = ("bare", "otel-distro")
ENDPOINTS = ("sleep", "busy")


def start(variant: str, endpoint: str) -> tuple[subprocess.Popen, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": "latency",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_PYTHON_DISTRO": "otel_distro"})
    prefix = [] if variant == "bare" else [str(BIN / "opentelemetry-instrument")]
    return start_server(variant, [*prefix, str(BIN / "uvicorn")], env, app="tests.apps.latency_app:app")


def measure(port: int, path: str, requests: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        for i in range(100 + requests):  # the first 100 warm up
            began = time.perf_counter()
            connection.request("GET", f"/{path}/{i}")
            connection.getresponse().read()
            if i >= 100:
                times.append(time.perf_counter() - began)
    finally:
        connection.close()
    return statistics.median(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {(v, e): [] for v in VARIANTS for e in ENDPOINTS}
    with OtlpTestReceiver() as receiver:
        for _ in range(args.rounds):
            for variant in VARIANTS:
                server, port = start(variant, receiver.endpoint)
                try:
                    for path in ENDPOINTS:
                        results[(variant, path)].append(measure(port, path, args.requests))
                finally:
                    stop_server(server)
        spans = len(receiver.spans())
    print(f"{'endpoint':<10} {'bare ms':>9} {'otel-distro ms':>15} {'overhead':>9}")
    for path in ENDPOINTS:
        bare = statistics.median(results[("bare", path)])
        ours = statistics.median(results[("otel-distro", path)])
        print(f"{path:<10} {bare:>9.3f} {ours:>15.3f} {(ours / bare - 1) * 100:>8.2f}%")
    print(f"(spans received from the instrumented runs: {spans})")


if __name__ == "__main__":
    main()
