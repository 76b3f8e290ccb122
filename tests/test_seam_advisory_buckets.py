"""The advisory-buckets seam: when reading an instrument's advice fails, its points still get seconds buckets."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_distro import _internal_errors, metrics
from otel_distro._sdk_private import advisory_buckets as seam
from tests.conftest import fresh_guards


def _bounds_and_count(advised: list[float] | None) -> tuple[tuple[float, ...], int]:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=metrics.views())
    provider.get_meter("t").create_histogram("d", unit="s", explicit_bucket_boundaries_advisory=advised).record(0.03)
    (point,) = [p for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                for m in sm.metrics for p in m.data.data_points]
    provider.shutdown()
    return tuple(point.explicit_bounds), point.count


def test_the_advice_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_guards(monkeypatch, seam, "HAS_ADVISED_BOUNDARIES")
    assert _bounds_and_count([0.1, 1.0]) == ((0.1, 1.0), 1)
    assert _bounds_and_count(None) == (metrics.SECONDS_BUCKETS, 1)


def test_when_the_advice_cannot_be_read_the_point_gets_seconds_buckets_and_it_is_reported_once(
        production_errors, monkeypatch: pytest.MonkeyPatch) -> None:
    def renamed(instrument: object) -> bool:
        raise AttributeError("'_Histogram' object has no attribute '_advisory'")

    monkeypatch.setattr(seam, "_advised", renamed)
    fresh_guards(monkeypatch, seam, "HAS_ADVISED_BOUNDARIES")
    assert _bounds_and_count([0.1, 1.0]) == (metrics.SECONDS_BUCKETS, 1)
    assert _bounds_and_count([0.2]) == (metrics.SECONDS_BUCKETS, 1)
    assert _internal_errors.internal_error_counts() == {"sdk_private.advisory_buckets": 1}
