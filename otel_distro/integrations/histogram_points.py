"""Recording the middleware's points (duration and body sizes) straight into the SDK's aggregations, in batches,
while that fast path holds.

The fast path is :mod:`otel_distro._sdk_private.histogram_points`. Whatever could make the SDK do otherwise takes
``Histogram.record``: instruments or an SDK without the fields read there (checked once), a disabled instrument,
readers added or removed since (the SDK replaces its storage map), a negative or non-finite amount, an attribute
set not seen through the SDK first, more attribute sets than ``MAX_SETS``, and any failure of the fast path (which
then stays off for the process).

On the fast path a request's points wait, with the context and time they were recorded in, until ``BATCH`` of them
are there or a reader collects (the SDK calls :meth:`HistogramPoints.flush` before it reads any aggregation):
aggregating them together reloads the SDK's aggregation code and state once per batch instead of once per request
(bench/server_cpu_breakdown.py). No reader ever sees a point late.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from time import time_ns
from typing import Any

from opentelemetry.context import get_current

from otel_distro._batches import hand_on_each
from otel_distro._sdk_private import histogram_points as _seam

BATCH = 128


class HistogramPoints:
    """Records one point in each of some SDK histograms of one meter, under one attribute set named by ``key``."""

    def __init__(self, *histograms: Any) -> None:
        self.histograms = histograms
        self.direct = _seam.sdk_matches(histograms)
        self._sets: dict[Any, tuple[Any, list[list[Any]], bool]] = {}
        self._record_direct = _seam.RECORD
        self._waiting: collections.deque[tuple[Any, ...]] = collections.deque()
        self._flushing = threading.Lock()
        if self.direct:
            _seam.call_before_collection(histograms, self.flush)

    def record(self, amounts: Sequence[float], key: Any, attributes: dict[str, Any]) -> None:
        """``histogram.record(amount, attributes)`` for each histogram and its amount, in order."""
        if self.direct:
            waiting = self._waiting
            waiting.append((amounts, key, attributes, get_current(), time_ns()))
            if len(waiting) >= BATCH:
                self.flush(blocking=False)  # a collection may be at it already
        else:
            for histogram, amount in zip(self.histograms, amounts, strict=True):
                histogram.record(amount, attributes)

    def flush(self, blocking: bool = True) -> None:
        """Aggregate the waiting points, oldest first."""
        histograms, sets, record = self.histograms, self._sets, self._record_direct
        hand_on_each(self._waiting, self._flushing, lambda point: record(histograms, sets, *point), blocking=blocking,
                     error_key="metrics.points", error_message="a histogram point could not be recorded")
