"""Seam: the middleware's points (duration, body sizes) recorded straight into the SDK's histogram aggregations.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1. ``Histogram.record`` costs ~7 µs per request, most of it before
the point reaches its bucket: a frozen ``Measurement`` whose attributes are cleaned again, the reader storages and
views looked up, the attributes filtered, hashed and looked up once more. The middleware records the same few
attribute sets over and over (method, scheme, route, status), all plain strings and ints. The SDK records the
first point of each set as usual; :func:`learn` then remembers the aggregations that point went to and
:func:`record` gives the next points of that set to them directly, with the exemplar decision the SDK would make
(~4 µs).

Private parts relied on: ``_Histogram`` and its ``_measurement_consumer`` (``_reader_storages``,
``_sdk_config.exemplar_filter``), the instruments' shared ``_meter_config`` (when one meter made them all, one
``_is_enabled()`` answers for all), ``MetricReaderStorage._get_or_init_view_instrument_match``, the view match's
``_view._attribute_keys`` and ``_attributes_aggregation``, ``_hash_attributes``, ``aggregate(point, sample)``,
and the consumer's ``register_asynchronous_instrument`` (a callable to run before every collection, as an
observable instrument's callback runs: :func:`call_before_collection`).
:data:`RECORD` and :data:`LEARN` are the guards: a failure of the direct path records through
``Histogram.record``; a failure to learn a set leaves it to ``Histogram.record``; either is then off for good.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from time import time_ns
from typing import Any

from opentelemetry.context import get_current
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, AlwaysOnExemplarFilter, TraceBasedExemplarFilter

from otel_distro._sdk_private import FastPath

# Attribute sets remembered per histogram; more go through Histogram.record.
MAX_SETS = 1024
_UNKNOWN = object()
# The SDK's exemplar filters that decide from the context alone, not from the amount: asked once per request.
_FILTERS_BY_CONTEXT = frozenset((AlwaysOnExemplarFilter, AlwaysOffExemplarFilter, TraceBasedExemplarFilter))


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


def _private_modules_present() -> bool:
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes  # noqa: F401
    from opentelemetry.sdk.metrics._internal.instrument import _Histogram  # noqa: F401
    from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage  # noqa: F401

    return True


def sdk_matches(histograms: Sequence[Any]) -> bool:
    """Whether ``histograms`` are the SDK's, of one meter provider, with the storage this seam reads (else:
    ``Histogram.record``)."""
    if not RECORD.active or not histograms:
        return False
    try:
        from opentelemetry.sdk.metrics._internal.instrument import Histogram, _Histogram
        from opentelemetry.sdk.metrics._internal.metric_reader_storage import MetricReaderStorage

        consumer = histograms[0]._measurement_consumer
        return (_Histogram.record is Histogram.record
                and all(type(histogram) is _Histogram and histogram._measurement_consumer is consumer
                        and callable(histogram._is_enabled) for histogram in histograms)
                and isinstance(consumer._reader_storages, dict)
                and hasattr(consumer._sdk_config, "exemplar_filter")
                and callable(getattr(consumer, "register_asynchronous_instrument", None))
                and all(type(storage) is MetricReaderStorage
                        and callable(getattr(storage, "_get_or_init_view_instrument_match", None))
                        for storage in consumer._reader_storages.values()))
    except AttributeError:  # not the SDK's histogram (a no-op or proxy one): its own record() it is
        return False


def _record_direct(histograms: Sequence[Any], sets: dict[Any, tuple[Any, list[list[Any]], bool]],
                   amounts: Sequence[float], key: Any, attributes: dict[str, Any], context: Any = None,
                   now: int | None = None) -> None:
    known = sets.get(key)
    if known is not None:
        first = histograms[0]
        consumer = first._measurement_consumer
        # The SDK replaces its storage map when readers are added or removed: learn the set again then.
        # Histograms of one meter share its config: one look says whether all are enabled.
        direct = known[0] is consumer._reader_storages and (
            first._is_enabled() if known[2] else all(histogram._is_enabled() for histogram in histograms))
        for amount in amounts:
            if not 0 <= amount < math.inf:  # what the SDK would not aggregate as given (negative, infinite, NaN)
                direct = False
        if direct:
            if context is None:
                context = get_current()
            if now is None:
                now = time_ns()
            exemplar_filter = consumer._sdk_config.exemplar_filter
            sample = None
            if type(exemplar_filter) in _FILTERS_BY_CONTEXT:
                sample = exemplar_filter.should_sample(amounts[0], now, attributes, context)
            samples = [sample] * len(amounts) if sample is not None else [
                exemplar_filter.should_sample(amount, now, attributes, context) for amount in amounts]
            # One point object, given each amount in turn: an aggregation and its exemplar reservoir read its
            # fields while aggregate() runs and keep none of it.
            point = _Point(amounts[0], now, histograms[0], context, attributes)
            for histogram, amount, aggregations, sampled in zip(histograms, amounts, known[1], samples, strict=True):
                point.value = amount
                point.instrument = histogram
                for aggregation in aggregations:
                    aggregation.aggregate(point, sampled)
            return
    _record_public(histograms, sets, amounts, key, attributes, context)
    if len(sets) < MAX_SETS:
        LEARN(histograms, sets, key, attributes)


def _record_public(histograms: Sequence[Any], sets: dict[Any, Any], amounts: Sequence[float], key: Any,
                   attributes: dict[str, Any], context: Any = None, now: int | None = None) -> None:
    for histogram, amount in zip(histograms, amounts, strict=True):
        histogram.record(amount, attributes, context=context)


def _learn(histograms: Sequence[Any], sets: dict[Any, tuple[Any, list[list[Any]], bool]], key: Any,
           attributes: dict[str, Any]) -> None:
    """Remember the aggregations ``Histogram.record`` just put these attributes' points in."""
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes

    storages = histograms[0]._measurement_consumer._reader_storages
    per_histogram = []
    for histogram in histograms:
        aggregations = []
        for storage in storages.values():
            for match in storage._get_or_init_view_instrument_match(histogram):
                keys = match._view._attribute_keys
                kept = attributes if keys is None else {k: v for k, v in attributes.items() if k in keys}
                aggregation = match._attributes_aggregation.get(_hash_attributes(kept))
                if aggregation is None:
                    return
                aggregations.append(aggregation)
        per_histogram.append(aggregations)
    # One meter's instruments share its config object: then the first one's _is_enabled() answers for all.
    config = getattr(histograms[0], "_meter_config", _UNKNOWN)
    one_config = config is not _UNKNOWN and all(
        getattr(histogram, "_meter_config", _UNKNOWN) is config for histogram in histograms)
    sets[key] = (storages, per_histogram, one_config)


def _learn_nothing(histograms: Sequence[Any], sets: dict[Any, Any], key: Any, attributes: dict[str, Any]) -> None:
    """The public path of learning: the set's next points go through ``Histogram.record`` too."""


class _BeforeCollection:
    """Registered with the SDK's measurement consumer as if an observable instrument: the consumer calls it on
    every collection, before it reads any aggregation; it observes nothing."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = weakref.WeakMethod(flush)  # the consumer keeps this for good; not what it flushes

    def callback(self, options: Any) -> list[Any]:
        flush = self._flush()
        if flush is not None:
            flush()
        return []


def call_before_collection(histograms: Sequence[Any], flush: Callable[[], None]) -> None:
    """Have ``flush`` called whenever a reader collects the meter provider of ``histograms`` (the SDK's, as
    :func:`sdk_matches` found them), before the points are read."""
    histograms[0]._measurement_consumer.register_asynchronous_instrument(_BeforeCollection(flush))


def new_guards() -> tuple[FastPath[None], FastPath[None]]:
    """The (record, learn) guards, probed against this SDK."""
    record = FastPath("histogram_points.record", _record_direct, _record_public)
    learn = FastPath("histogram_points.learn", _learn, _learn_nothing)
    record.probe(_private_modules_present)
    return record, learn


RECORD, LEARN = new_guards()
