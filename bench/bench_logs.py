"""Cost of a log line with the distro (OTLP export + JSON console) against a plain StreamHandler.

    .venv/bin/python bench/bench_logs.py [lines]

One run, one process: first the baseline (a StreamHandler with a usual text
format), then the distro configured as `opentelemetry-instrument` would
(OTLP/HTTP to a local test receiver, OTEL_DISTRO_LOG_FORMAT=json). Both write
their console lines to /dev/null. Reported:

- caller: time per line in the thread that logs (what a request pays);
- all threads: wall time until every line is printed and exported, per line
  (the background work included: the worker and the exporter share the GIL);
- burst: 50,000 lines/s for 1 s, then every record must reach the receiver.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.otlp_test_receiver import OtlpTestReceiver

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def run_lines(log: logging.Logger, count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        log.info("order %s created for %d items", "A-7", i, extra={"tenant": "acme"})
    return time.perf_counter() - start


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    sys.stderr = open("/dev/null", "w")  # both consoles print to stderr, here /dev/null
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    log = logging.getLogger("bench")

    plain = logging.StreamHandler()
    plain.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(plain)
    run_lines(log, 5_000)  # warm-up
    baseline = min(run_lines(log, lines) for _ in range(3)) / lines

    with OtlpTestReceiver() as receiver:
        import otel_distro
        from otel_distro import logs

        telemetry = otel_distro.configure(
            service_name="bench", otlp_endpoint=receiver.endpoint, log_format="json",
            traces_exporter=(), metrics_exporter=(), system_metrics=False)
        assert telemetry is not None
        bridge = logs.bridge()
        assert plain not in root.handlers  # stepped aside: the distro prints to its stream
        run_lines(log, 5_000)
        bridge.flush()
        telemetry.logger_provider.force_flush()

        caller, total = [], []
        for _ in range(3):
            start = time.perf_counter()
            caller.append(run_lines(log, lines) / lines)
            telemetry.logger_provider.force_flush(60_000)
            total.append((time.perf_counter() - start) / lines)
        received_before = len(receiver.logs())

        # Burst: 50 lines every millisecond for one second.
        _burst, sent = 50_000, 0
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

    print(f"plain StreamHandler:                 {baseline * 1e6:6.2f} us/line")
    print(f"distro, caller thread:               {min(caller) * 1e6:6.2f} us/line  "
          f"ratio {min(caller) / baseline:.2f}x")
    print(f"distro, all threads (until exported): {min(total) * 1e6:6.2f} us/line  "
          f"ratio {min(total) / baseline:.2f}x")
    print(f"burst: sent {sent} lines in {burst_wall:.2f}s, received {received}, "
          f"dropped by the bridge {bridge.dropped}, lost {sent - received}")


if __name__ == "__main__":
    main()
