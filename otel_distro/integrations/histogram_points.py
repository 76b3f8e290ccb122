"""Recording the middleware's points (duration and body sizes) straight into the SDK's aggregations, while that
fast path holds.

The fast path is :mod:`otel_distro._sdk_private.histogram_points`. Whatever could make the SDK do otherwise takes
``Histogram.record``: instruments or an SDK without the fields read there (checked once), a disabled instrument,
readers added or removed since (the SDK replaces its storage map), a negative or non-finite amount, an attribute
set not seen through the SDK first, more attribute sets than ``MAX_SETS``, and any failure of the fast path (which
then stays off for the process).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from otel_distro._sdk_private import histogram_points as _seam


class HistogramPoints:
    """Records one point in each of some SDK histograms of one meter, under one attribute set named by ``key``."""

    def __init__(self, *histograms: Any) -> None:
        self.histograms = histograms
        self.direct = _seam.sdk_matches(histograms)
        self._sets: dict[Any, tuple[Any, list[list[Any]], bool]] = {}
        self._record_direct = _seam.RECORD

    def record(self, amounts: Sequence[float], key: Any, attributes: dict[str, Any]) -> None:
        """``histogram.record(amount, attributes)`` for each histogram and its amount, in order."""
        if self.direct:
            self._record_direct(self.histograms, self._sets, amounts, key, attributes)
        else:
            for histogram, amount in zip(self.histograms, amounts, strict=True):
                histogram.record(amount, attributes)
