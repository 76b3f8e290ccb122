"""Duration points recorded straight into the SDK's aggregations equal the SDK's own."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import TracerProvider

from otel_distro.integrations.histogram_points import BATCH, HistogramPoints

SETS = [{"http.request.method": "GET", "url.scheme": "http", "http.route": "/items/{id}",
         "http.response.status_code": 200},
        {"http.request.method": "POST", "url.scheme": "http", "http.route": "/orders",
         "http.response.status_code": 201},
        {"http.request.method": "GET", "url.scheme": "http", "http.response.status_code": 500,
         "error.type": "500"}]
AMOUNTS = [0.0, 0.0004, 0.003, 0.02, 0.2, 1.5, 12.0, 0.003, -1.0, math.nan, math.inf, 0.07]


def _rig() -> tuple[Any, list[InMemoryMetricReader], MeterProvider]:
    readers = [InMemoryMetricReader(),
               InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})]
    provider = MeterProvider(metric_readers=readers, views=[
        View(instrument_name="d"),
        View(instrument_name="d", name="d.by_route", attribute_keys={"http.route"})])
    histogram = provider.get_meter("t").create_histogram("d", unit="s")
    return histogram, readers, provider


def _points(reader: InMemoryMetricReader) -> list[tuple]:
    data = reader.get_metrics_data()
    out = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    out.append((metric.name, sorted(p.attributes.items()), p.count, p.sum, p.min, p.max,
                                tuple(p.bucket_counts),
                                sorted((e.value, sorted((e.filtered_attributes or {}).items()))
                                       for e in p.exemplars)))
    return sorted(out, key=repr)


def _drive(record) -> None:
    tracer = TracerProvider().get_tracer("t")
    for i, amount in enumerate(AMOUNTS * 3):
        attributes = SETS[i % len(SETS)]
        if i % 4 == 0:  # inside a sampled span: the exemplar filter keeps the point
            with tracer.start_as_current_span("s", context=None):
                record(amount, attributes)
        else:
            record(amount, attributes)


def test_points_match_the_sdks_on_every_reader_and_view() -> None:
    results = []
    for direct in (False, True):
        histogram, readers, _ = _rig()
        points = HistogramPoints(histogram)
        assert points.direct  # this SDK is the one histogram_points.py reads
        points.direct = direct
        _drive(lambda amount, attributes, points=points: points.record((amount,), tuple(attributes.values()),
                                                                        dict(attributes)))
        results.append([_points(reader) for reader in readers])
    sdk, direct = results
    assert sdk == direct
    assert all(len(points) == 2 * len(SETS) for points in sdk)  # two views; d.by_route: 2 routes and none


def test_only_the_first_point_of_a_set_goes_through_the_sdk() -> None:
    histogram, _, _ = _rig()
    points = HistogramPoints(histogram)
    consumer = histogram._measurement_consumer
    seen: list[Any] = []
    original = consumer.consume_measurement
    consumer.consume_measurement = lambda m, *a: (seen.append(m.attributes), original(m, *a))[1]
    for _ in range(5):
        for attributes in SETS:
            points.record((0.01,), tuple(attributes.values()), dict(attributes))
    points.flush()
    assert len(seen) == len(SETS)


def test_a_reader_added_later_gets_the_next_points() -> None:
    histogram, readers, provider = _rig()
    points = HistogramPoints(histogram)
    for _ in range(3):
        points.record((0.01,), "get", dict(SETS[0]))
    points.flush()  # points still waiting when a reader is added go to it too
    late = InMemoryMetricReader()
    provider.add_metric_reader(late)
    for _ in range(4):
        points.record((0.01,), "get", dict(SETS[0]))
    counts = {name: count for name, _, count, *_ in _points(late)}
    assert counts == {"d": 4, "d.by_route": 4}
    assert {name: count for name, _, count, *_ in _points(readers[0])} == {"d": 7, "d.by_route": 7}


def _through_the_sdk_and_direct(use: Callable[[HistogramPoints, MeterProvider], None]) -> tuple[list, list]:
    """Each reader's points after ``use`` recorded duration and size points through the SDK, then directly."""
    results = []
    for direct in (False, True):
        histogram, readers, provider = _rig()
        points = HistogramPoints(histogram, provider.get_meter("t").create_histogram("size", unit="By"))
        assert points.direct
        points.direct = direct
        use(points, provider)
        results.append([_points(reader) for reader in readers])
    return results[0], results[1]


def test_points_of_several_histograms_recorded_together_match_the_sdks() -> None:
    sdk, direct = _through_the_sdk_and_direct(lambda points, _provider: _drive(
        lambda amount, attributes: points.record((amount, amount * 1000), tuple(attributes.values()),
                                                 dict(attributes))))
    assert sdk == direct
    assert all({name for name, *_ in points} == {"d", "d.by_route", "size"} for points in sdk)


def test_histograms_of_two_meter_providers_are_recorded_through_the_sdk() -> None:
    histogram, readers, _ = _rig()
    other, other_readers, _ = _rig()
    points = HistogramPoints(histogram, other)
    assert not points.direct
    points.record((0.5, 0.25), "get", dict(SETS[0]))
    assert [(name, total) for name, _, _, total, *_ in _points(readers[0]) if name == "d"] == [("d", 0.5)]
    assert [(name, total) for name, _, _, total, *_ in _points(other_readers[0]) if name == "d"] == [("d", 0.25)]


def test_a_meter_disabled_after_its_sets_were_learned_records_nothing_as_the_sdk() -> None:
    """The direct path asks whether the meter is enabled once per request (its histograms share its config)."""
    from opentelemetry.sdk.metrics._internal import _disable_meter_configurator

    def use(points: HistogramPoints, provider: MeterProvider) -> None:
        for amount in (0.1, 0.2):  # learned (direct) or recorded (SDK) while enabled
            points.record((amount, 10.0), "get", dict(SETS[0]))
        points.flush()  # a meter disabled applies to the points still waiting too
        provider._set_meter_configurator(meter_configurator=_disable_meter_configurator)
        points.record((5.0, 500.0), "get", dict(SETS[0]))

    sdk, direct = _through_the_sdk_and_direct(use)
    assert sdk == direct
    totals = {name: total for name, _, _, total, *_ in sdk[0]}
    assert totals["d"] == pytest.approx(0.3) and totals["size"] == 20.0  # the point made while disabled: nowhere


def test_points_wait_for_a_batch_or_a_collection_and_none_is_lost_or_late() -> None:
    histogram, readers, provider = _rig()
    points = HistogramPoints(histogram)
    for _ in range(BATCH - 1):
        points.record((0.5,), "get", dict(SETS[0]))
    assert len(points._waiting) == BATCH - 1  # nothing aggregated yet
    assert {name: count for name, _, count, *_ in _points(readers[0])} == {"d": BATCH - 1, "d.by_route": BATCH - 1}
    assert not points._waiting  # the collection took them first
    for _ in range(BATCH):
        points.record((0.25,), "get", dict(SETS[0]))
    assert not points._waiting  # a full batch is aggregated without waiting for a collection
    totals = {name: (count, total) for name, _, count, total, *_ in _points(readers[0])}
    assert totals["d"] == (2 * BATCH - 1, pytest.approx(0.5 * (BATCH - 1) + 0.25 * BATCH))
    provider.shutdown()
