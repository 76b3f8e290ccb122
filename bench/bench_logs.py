"""Cost of a log line with the distro (OTLP export + JSON console) against a plain StreamHandler.

    .venv/bin/python bench/bench_logs.py [--lines 50000] [--rounds 3]

One process, three set-ups measured in turn, each round in the same order:

- plain: a StreamHandler with a usual text format;
- stock: what upstream offers - the SDK's LoggingHandler (OTLP/HTTP through a
  BatchLogRecordProcessor) next to that StreamHandler;
- otel-distro: configured as ``opentelemetry-instrument`` would, OTLP/HTTP and
  ``OTEL_DISTRO_LOG_FORMAT=json`` (its JSON console replaces the StreamHandler).

Console lines go to /dev/null, OTLP to the repository's test receiver. The
figures are CPU time, not wall time (the machine is shared and noisy):

- logging thread: CPU of the thread that logs, per line - what a request pays;
- all threads: CPU of every thread of the set-up (the logging thread, the
  bridge's worker, the batch exporter) until every line is printed and
  exported, per line - the receiver's threads are not counted.

Then a burst: 50,000 lines/s for 1 s through the distro, every record must
reach the receiver.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.otlp_test_receiver import OtlpTestReceiver

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
TICKS = os.sysconf("SC_CLK_TCK")


def run_lines(log: logging.Logger, count: int) -> None:
    for i in range(count):
        log.info("order %s created for %d items", "A-7", i, extra={"tenant": "acme"})


def thread_cpu(names: set[str]) -> float:
    """CPU seconds used so far by the live threads with these names (from /proc)."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name in names and thread.native_id is not None:
            try:
                fields = Path(f"/proc/self/task/{thread.native_id}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def measure(log: logging.Logger, lines: int, names: set[str], flush: Callable[[], None]) -> tuple[float, float]:
    """(logging-thread CPU, all threads' CPU) per line, in seconds."""
    before_all = thread_cpu(names)
    before = time.thread_time()
    run_lines(log, lines)
    caller = time.thread_time() - before
    flush()
    return caller / lines, (thread_cpu(names) - before_all) / lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.stderr = open(os.devnull, "w")  # every console line goes to stderr, here /dev/null
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench")
    main_thread = {threading.current_thread().name}
    results: dict[str, list[tuple[float, float]]] = {"plain": [], "stock": [], "otel-distro": []}

    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    with OtlpTestReceiver() as receiver:
        plain = logging.StreamHandler()
        plain.setFormatter(logging.Formatter(FORMAT))
        stock_provider = LoggerProvider(resource=Resource.create({"service.name": "bench"}))
        stock_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=receiver.endpoint + "/v1/logs")))
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        stock = LoggingHandler(logger_provider=stock_provider)
        stock_threads = main_thread | {"OtelBatchLogRecordProcessor"}
        for _ in range(args.rounds):
            root.addHandler(plain)
            run_lines(log, 2_000)  # warm-up
            results["plain"].append(measure(log, args.lines, main_thread, lambda: None))
            root.addHandler(stock)
            run_lines(log, 2_000)
            stock_provider.force_flush()
            results["stock"].append(measure(log, args.lines, stock_threads,
                                            lambda: stock_provider.force_flush(60_000)))
            root.removeHandler(stock)
            root.removeHandler(plain)
        stock_provider.shutdown()

        # The distro last: its bridge cannot be taken out and put back cheaply between rounds.
        import otel_distro
        from otel_distro import logs

        root.addHandler(plain)
        telemetry = otel_distro.configure(
            service_name="bench", otlp_endpoint=receiver.endpoint, log_format="json",
            traces_exporter=(), metrics_exporter=(), system_metrics=False)
        assert telemetry is not None
        bridge = logs.bridge()
        assert bridge is not None and plain not in root.handlers  # the distro prints instead
        distro_threads = main_thread | {"otel-distro-logs", "OtelBatchLogRecordProcessor"}
        run_lines(log, 2_000)
        telemetry.logger_provider.force_flush()
        for _ in range(args.rounds):
            results["otel-distro"].append(measure(log, args.lines, distro_threads,
                                                  lambda: telemetry.logger_provider.force_flush(60_000)))
        received_before = len(receiver.logs())

        # Burst: 50 lines every millisecond for one second.
        sent = 0
        start = time.perf_counter()
        for tick in range(1000):
            for _ in range(50):
                log.info("burst line %d", sent)
                sent += 1
            pause = start + (tick + 1) / 1000 - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        burst_wall = time.perf_counter() - start
        telemetry.logger_provider.force_flush(120_000)
        received = len(receiver.logs()) - received_before
        otel_distro.shutdown()

    base = statistics.median(c for c, _ in results["plain"])
    print(f"{'set-up':<13} {'logging thread µs':>18} {'x plain':>8} {'all threads µs':>15} {'x plain':>8}")
    for name, runs in results.items():
        caller = statistics.median(c for c, _ in runs)
        total = statistics.median(t for _, t in runs)
        print(f"{name:<13} {caller * 1e6:>18.2f} {caller / base:>8.2f} {total * 1e6:>15.2f} {total / base:>8.2f}")
    print(f"burst: sent {sent} lines in {burst_wall:.2f}s, received {received}, "
          f"dropped {bridge.losses.total}, lost {sent - received}")


if __name__ == "__main__":
    main()
