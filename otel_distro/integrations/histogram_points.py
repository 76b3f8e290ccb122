"""Recording the middleware's duration points, straight into the SDK's aggregations while that fast path holds.

The fast path is :mod:`otel_distro._sdk_private.histogram_points`. Whatever could make the SDK do otherwise takes
``Histogram.record``: an instrument or SDK without the fields read there (checked once), a disabled instrument,
readers added or removed since (the SDK replaces its storage map), a negative or non-finite amount, an attribute
set not seen through the SDK first, more attribute sets than ``MAX_SETS``, and any failure of the fast path (which
then stays off for the process).
"""

from __future__ import annotations

from typing import Any

from otel_distro._sdk_private import histogram_points as _seam


class HistogramPoints:
    """Records points of one SDK histogram; ``key`` names the attribute set."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.direct = _seam.sdk_matches(histogram)
        self._sets: dict[Any, tuple[Any, list[Any]]] = {}
        self._record_direct = _seam.RECORD

    def record(self, amount: float, key: Any, attributes: dict[str, Any]) -> None:
        if self.direct:
            self._record_direct(self.histogram, self._sets, amount, key, attributes)
        else:
            self.histogram.record(amount, attributes)
