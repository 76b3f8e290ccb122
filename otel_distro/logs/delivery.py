"""What became of the bridged log records: counted, lost ones reported (rate limited) and exported as a metric.

A record is lost only when a batch queue is full - the exporter or the Collector cannot keep up - or when it
is still queued at exit. The bridge's own queue never loses one: past its bound the thread that logs does the
worker's part itself. Each loss is counted; the count is reported on the ``otel_distro`` logger (one line per
OTEL_DISTRO_EXPORT_ERROR_INTERVAL, and a last one at exit) and exported as the SDK self-observability counter
``otel.sdk.processor.log.processed`` (``error.type`` ``queue_full`` for the records dropped).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

_log = logging.getLogger("otel_distro.delivery")  # not bridged: a report of drops must not add to them

QUEUE_FULL = "queue_full"
LEFT_AT_EXIT = "left_at_exit"
_WHY = {QUEUE_FULL: "a batch queue was full: the exporter or the Collector cannot keep up",
        LEFT_AT_EXIT: "still queued when the process exited (OTEL_DISTRO_SHUTDOWN_TIMEOUT)"}
# The bridge is a batching stage in front of the SDK's processors: a component type of its own
# (semconv allows custom values), the metric and error.type as the SDK's processors report them.
COMPONENT = {"otel.component.type": "otel_distro.log_bridge", "otel.component.name": "otel_distro.log_bridge/0"}


class Losses:
    """Counts of records handed on and of records lost, by reason; thread-safe."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self.processed = 0
        self.lost: dict[str, int] = {}
        self._reported = 0
        self._next_report = 0.0

    def handed_on(self, count: int) -> None:
        with self._lock:
            self.processed += count

    def add(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self.lost[reason] = self.lost.get(reason, 0) + count
        self.report_if_due()

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.lost.values())

    def report_if_due(self) -> None:
        """One line for the losses since the last one, at most once per ``interval``."""
        now = time.monotonic()
        if now < self._next_report:
            return
        with self._lock:
            total = sum(self.lost.values())
            new, self._reported = total - self._reported, total
            if new:
                self._next_report = now + self.interval
        if new:
            _log.warning("otel-distro: %d log records dropped (%d in all): %s [one such line per %gs: "
                         "OTEL_DISTRO_EXPORT_ERROR_INTERVAL]", new, total, _WHY[QUEUE_FULL], self.interval)

    def final_report(self) -> None:
        """At exit: every loss of the process in one line, whatever the interval."""
        with self._lock:
            lost = dict(self.lost)
        total = sum(lost.values())
        if total:
            parts = "; ".join(f"{count} {_WHY[reason]}" for reason, count in lost.items())
            _log.warning("otel-distro: log records not exported in all: %d (%s)", total, parts)

    def observe(self, meter_provider: Any) -> None:
        """Export the counts as ``otel.sdk.processor.log.processed`` through ``meter_provider``."""
        from opentelemetry.metrics import Observation

        def observations(_options: Any) -> list[Observation]:
            with self._lock:
                lost = dict(self.lost)
                processed = self.processed
            out = [Observation(processed, COMPONENT)]
            out += [Observation(count, {**COMPONENT, "error.type": reason}) for reason, count in lost.items()]
            return out

        meter_provider.get_meter("otel_distro").create_observable_counter(
            "otel.sdk.processor.log.processed", callbacks=[observations], unit="{log_record}",
            description="The number of log records for which the processing has finished, either successful "
                        "or failed.")


def _waiting_unknown(provider: Any) -> int:
    return 0  # the public SDK offers no count of queued records


def report_at_exit(losses: Losses, provider: Any) -> None:
    """After the last flush: records still in a batch queue are lost too; then the process's one summary."""
    from otel_distro._sdk_private import FastPath, log_queue

    left = FastPath("log_queue.waiting", log_queue.waiting, _waiting_unknown)(provider)
    if left:
        losses.add(LEFT_AT_EXIT, left)
    losses.final_report()
