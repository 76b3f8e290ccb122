"""Redaction's cost: throughput of the rules, and CPU per request for a hostile path.

    .venv/bin/python bench/bench_redaction.py [--rounds 3] [--requests 2000] [--warmup 200]

1. Throughput (MB/s of text, CPU time, the redactor's memo cleared before each
   value so every byte is read): ordinary text (log lines, routes, ids, prose
   of 4 KB values) and, per rule, the hostile inputs of
   tests/test_redaction_rules.py at 32 KB (the default length cap).
2. Server CPU per request for ``GET /a.a.a…@x.io`` (a 14 KB path: 0.34 s for
   32 KB before the rules were rewritten) against examples/fastapi_app under
   opentelemetry-instrument, otel-distro with redaction on and off (and the
   bare app for scale), OTLP to the repository's test receiver. Variants are
   interleaved round by round; the figure is the server's user+system CPU
   (/proc) per request after a warm-up, until 2 s after the last request
   (spans exported every 200 ms: their redaction and export counted);
   medians, and the ratio on/off.
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
sys.path.insert(0, str(ROOT / "bench"))

from bench_latency import stop  # noqa: E402
from http_server_cpu import BIN, cpu_seconds, free_port, variant_env  # noqa: E402

from otel_distro.redaction import Redactor  # noqa: E402
from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402
from tests.test_redaction_rules import ADVERSARIAL, ADVERSARIAL_PAIRS  # noqa: E402

HOSTILE_PATH = "/" + "a." * 7_000 + "@x.io"  # 14 KB
ORDINARY_LINES = [
    "GET /items/{item_id} 200 in 3.2 ms for tenant acme",
    "order A-7 created for 3 items, total 93.00 EUR, user 42 from 10.0.0.5:8443",
    "traceparent 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 accepted",
    "retrying in 2.5s (attempt 3 of 5): upstream answered 503 Service Unavailable",
    "The token count was 512 and the session lasted 4 minutes; cache.key=items:42 hit",
    "2026-11-05T10:00:00.123456Z worker-3 finished job 123e4567-e89b-12d3-a456-426614174000",
]


def ordinary_text(size: int) -> str:
    text = ""
    i = 0
    while len(text) < size:
        text += ORDINARY_LINES[i % len(ORDINARY_LINES)] + "\n"
        i += 1
    return text[:size]


def throughput(redactor: Redactor, text: str, min_seconds: float = 0.3) -> float:
    """MB/s of ``text`` through the rules: best of 3 runs of at least ``min_seconds`` CPU each."""
    best = 0.0
    for _ in range(3):
        calls = 0
        started = time.process_time()
        while (spent := time.process_time() - started) < min_seconds:
            redactor._texts.clear()
            redactor.text(text)
            calls += 1
        best = max(best, calls * len(text) / spent / 1e6)
    return best


def print_throughput() -> None:
    redactor = Redactor()
    print(f"{'text':<34} {'MB/s':>8}")
    print(f"{'ordinary, 4 KB values':<34} {throughput(redactor, ordinary_text(4096)):>8.1f}")
    print(f"{'hostile path, 14 KB':<34} {throughput(redactor, HOSTILE_PATH):>8.1f}")
    hostile = [(f"{rule} #{i + 1}", make) for rule, makers in ADVERSARIAL.items() for i, make in enumerate(makers)]
    hostile += [(f"key=value #{i + 1}", make) for i, make in enumerate(ADVERSARIAL_PAIRS)]
    figures = []
    for name, make in hostile:
        figures.append(throughput(redactor, make(32 * 1024 - 64), 0.1))  # under the cap: all of it is read
        print(f"{'hostile ' + name + ', 32 KB':<34} {figures[-1]:>8.1f}")
    print(f"{'hostile inputs: median (min)':<34} {statistics.median(figures):>8.1f} ({min(figures):.1f})")


def request_cpu(name: str, redact: str, endpoint: str, requests: int, warmup: int) -> float:
    """Server CPU µs per ``GET HOSTILE_PATH``, for one fresh server."""
    port = free_port()
    prefix, env = variant_env(name, endpoint)
    env["OTEL_DISTRO_REDACT"] = redact
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"  # the spans' export (and redaction) falls inside the measured window
    argv = [*prefix, str(BIN / "uvicorn"), "examples.fastapi_app.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(os.devnull, "wb") as devnull:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=devnull, stderr=devnull, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("GET", "/items/1")
                connection.getresponse().read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        for _ in range(warmup):
            connection.request("GET", HOSTILE_PATH)
            connection.getresponse().read()
        before = cpu_seconds(server.pid)
        for _ in range(requests):
            connection.request("GET", HOSTILE_PATH)
            connection.getresponse().read()
        connection.close()
        time.sleep(2.0)  # the batch exporter's work for these requests is theirs too
        spent = cpu_seconds(server.pid) - before
        return spent / requests * 1e6
    finally:
        stop(server)


def print_request_cpu(rounds: int, requests: int, warmup: int) -> None:
    variants = [("bare", "bare", "true"), ("redaction off", "otel-distro", "false"),
                ("redaction on", "otel-distro", "true")]
    results: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    with OtlpTestReceiver() as receiver:
        for _ in range(rounds):
            for label, name, redact in variants:
                results[label].append(request_cpu(name, redact, receiver.endpoint, requests, warmup))
    off = statistics.median(results["redaction off"])
    print(f"\nGET {HOSTILE_PATH[:12]}…@x.io ({len(HOSTILE_PATH):,} characters), server CPU per request")
    print(f"{'variant':<16} {'µs/request':>11} {'x redaction off':>16}  rounds")
    for label, _, _ in variants:
        median = statistics.median(results[label])
        print(f"{label:<16} {median:>11.0f} {median / off:>16.2f}  {', '.join(f'{v:.0f}' for v in results[label])}")
    paired = [on / o for on, o in zip(results["redaction on"], results["redaction off"], strict=True)]
    print(f"on/off per round: median {statistics.median(paired):.2f} ({min(paired):.2f}-{max(paired):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200, help="hostile requests before measuring")
    parser.add_argument("--skip-server", action="store_true", help="throughput only")
    args = parser.parse_args()
    print_throughput()
    if not args.skip_server:
        print_request_cpu(args.rounds, args.requests, args.warmup)


if __name__ == "__main__":
    main()
