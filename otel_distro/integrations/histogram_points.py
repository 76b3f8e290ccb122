"""Recording the middleware's duration points straight into the SDK's aggregations.

``Histogram.record`` costs ~7 µs per request, most of it before the point
reaches its bucket: a frozen ``Measurement`` whose attributes are cleaned
again, the reader storages and views looked up, the attributes filtered,
hashed and looked up once more. The middleware records the same few attribute
sets over and over (method, scheme, route, status), all plain strings and
ints. :class:`HistogramPoints` lets the SDK record the first point of each
set as usual, then remembers the aggregations that point went to and gives
the next points of that set to them directly, with the exemplar decision the
SDK would make (~4 µs).

Whatever could make the SDK do otherwise takes ``Histogram.record``: an
instrument or SDK without the fields read here (checked once), a disabled
instrument, readers added or removed since (the SDK replaces its storage
map), a negative or non-finite amount, an attribute set not seen through the
SDK first, or more attribute sets than :data:`MAX_SETS`.
"""

from __future__ import annotations

import math
from time import time_ns
from typing import Any

from opentelemetry.context import get_current

# Attribute sets remembered per histogram; more go through Histogram.record.
MAX_SETS = 1024


class _Point:
    """What an aggregation and its exemplar reservoir read of a Measurement."""

    __slots__ = ("attributes", "context", "instrument", "time_unix_nano", "value")

    def __init__(self, value: float, time_unix_nano: int, instrument: Any, context: Any,
                 attributes: dict[str, Any]) -> None:
        self.value = value
        self.time_unix_nano = time_unix_nano
        self.instrument = instrument
        self.context = context
        self.attributes = attributes


def _sdk_matches(histogram: Any) -> bool:
    try:
        from opentelemetry.sdk.metrics._internal.instrument import Histogram, _Histogram
        from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage

        consumer = histogram._measurement_consumer
        return (type(histogram) is _Histogram and _Histogram.record is Histogram.record
                and callable(histogram._is_enabled)
                and isinstance(consumer._reader_storages, dict)
                and hasattr(consumer._sdk_config, "exemplar_filter")
                and all(type(storage) is MetricReaderStorage
                        and callable(getattr(storage, "_get_or_init_view_instrument_match", None))
                        for storage in consumer._reader_storages.values()))
    except Exception:
        return False


class HistogramPoints:
    """Records points of one SDK histogram; ``key`` names the attribute set."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.direct = _sdk_matches(histogram)
        self._sets: dict[Any, tuple[Any, list[Any]]] = {}

    def record(self, amount: float, key: Any, attributes: dict[str, Any]) -> None:
        histogram = self.histogram
        if self.direct:
            known = self._sets.get(key)
            if known is not None and amount >= 0 and amount != math.inf:
                consumer = histogram._measurement_consumer
                if known[0] is consumer._reader_storages and histogram._is_enabled():
                    context = get_current()
                    now = time_ns()
                    point = _Point(amount, now, histogram, context, attributes)
                    sample = consumer._sdk_config.exemplar_filter.should_sample(amount, now, attributes, context)
                    for aggregation in known[1]:
                        aggregation.aggregate(point, sample)
                    return
        histogram.record(amount, attributes)
        if self.direct and len(self._sets) < MAX_SETS:
            try:
                self._learn(key, attributes)
            except Exception:  # an SDK that differs: the SDK's own path from now on
                self.direct = False

    def _learn(self, key: Any, attributes: dict[str, Any]) -> None:
        """The aggregations ``Histogram.record`` just put these attributes' point in."""
        from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes

        histogram = self.histogram
        storages = histogram._measurement_consumer._reader_storages
        aggregations = []
        for storage in storages.values():
            for match in storage._get_or_init_view_instrument_match(histogram):
                keys = match._view._attribute_keys
                kept = attributes if keys is None else {k: v for k, v in attributes.items() if k in keys}
                aggregation = match._attributes_aggregation.get(_hash_attributes(kept))
                if aggregation is None:
                    return
                aggregations.append(aggregation)
        self._sets[key] = (storages, aggregations)
