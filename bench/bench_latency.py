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
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402 - the repo's own test receiver

BIN = Path(sys.executable).parent
VARIANTS = ("bare", "otel-distro")
ENDPOINTS = ("sleep", "busy")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(variant: str, endpoint: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": "latency",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_PYTHON_DISTRO": "otel_distro"})
    prefix = [] if variant == "bare" else [str(BIN / "opentelemetry-instrument")]
    argv = [*prefix, str(BIN / "uvicorn"), "tests.apps.latency_app:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(os.devnull, "wb") as devnull:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=devnull, stderr=devnull,
                                  start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop(server)
                raise RuntimeError(f"{variant} did not start") from None
            time.sleep(0.1)


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)


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
                    stop(server)
        spans = len(receiver.spans())
    print(f"{'endpoint':<10} {'bare ms':>9} {'otel-distro ms':>15} {'overhead':>9}")
    for path in ENDPOINTS:
        bare = statistics.median(results[("bare", path)])
        ours = statistics.median(results[("otel-distro", path)])
        print(f"{path:<10} {bare:>9.3f} {ours:>15.3f} {(ours / bare - 1) * 100:>8.2f}%")
    print(f"(spans received from the instrumented runs: {spans})")


if __name__ == "__main__":
    main()
