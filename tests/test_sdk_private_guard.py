"""The guard every private fast path runs behind: a failure falls back to the public path for good, reported once."""

import logging

import pytest

from otel_distro._sdk_private import FastPath


def _broken(value: int) -> int:
    raise AttributeError("'TracerProvider' object has no attribute '_active_span_processor'")


def test_a_failing_fast_path_answers_through_the_public_path_and_stays_retired(production_errors, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    calls: list[int] = []
    guard = FastPath("test.seam", _broken, lambda value: calls.append(value) or value * 2)
    assert [guard(1), guard(2), guard(3)] == [2, 4, 6]
    assert calls == [1, 2, 3]
    assert not guard.active
    warnings = [r.getMessage() for r in caplog.records if "test.seam" in r.getMessage()]
    assert len(warnings) == 1 and "public SDK path" in warnings[0]


def test_a_working_fast_path_is_used() -> None:
    guard = FastPath("test.fast", lambda value: value + 1, lambda value: pytest.fail("public path taken"))
    assert guard(1) == 2 and guard.active


def test_a_failed_probe_keeps_the_public_path(production_errors) -> None:
    guard = FastPath("test.probe", lambda: "fast", lambda: "public")
    assert guard.probe(lambda: False) is False
    assert guard() == "public"


def test_under_our_tests_a_fast_path_failure_raises() -> None:
    guard = FastPath("test.raise", _broken, lambda value: value)
    with pytest.raises(AttributeError):
        guard(1)


def test_a_metric_exporter_without_the_private_preferences_gets_the_sdk_defaults(production_errors) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader

    from otel_distro import _internal_errors, redaction
    from otel_distro.redaction import Redactor

    class Bare:
        """A metric exporter of an SDK that keeps its preferences elsewhere."""

        def __init__(self) -> None:
            self.exported: list = []

        def export(self, metrics_data, *args, **kwargs):
            self.exported.append(metrics_data)

        def shutdown(self, *args, **kwargs):
            return None

        def force_flush(self, *args, **kwargs):
            return True

    bare = Bare()
    reader = PeriodicExportingMetricReader(redaction.wrap_metric_exporter(bare, Redactor()),
                                           export_interval_millis=3_600_000)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("m").create_counter("c").add(1)
    provider.force_flush()
    provider.shutdown()
    (metric,) = [m for data in bare.exported for rm in data.resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics][:1]
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE
    assert _internal_errors.internal_error_counts() == {"sdk_private.metric_exporter": 1}
