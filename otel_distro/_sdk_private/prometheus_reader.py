"""Seam: the metrics a pull reader (Prometheus) receives at scrape time pass through a transformation first.

Tested with opentelemetry-exporter-prometheus 0.66b0: ``PrometheusMetricReader._receive_metrics(metrics_data,
...)`` is what the SDK calls with each collection. The redaction of point attributes hooks in there, so it
runs when Prometheus scrapes, not when a measurement is recorded. A reader without that method has no public
way in: the failure is reported (its point attributes are then served as recorded).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from otel_distro._internal_errors import report_internal_error


def transform_received(reader: Any, transform: Callable[[Any], Any]) -> None:
    """Make ``reader`` receive ``transform(metrics_data)``; a None result is not passed on."""
    receive = getattr(reader, "_receive_metrics", None)
    if not callable(receive):
        report_internal_error("sdk_private.prometheus_reader", "the Prometheus reader has no _receive_metrics (an "
                              "exporter version not tested): its point attributes are served unredacted")
        return

    def receive_transformed(metrics_data: Any, *args: Any, **kwargs: Any) -> Any:
        if metrics_data is None:
            return receive(metrics_data, *args, **kwargs)
        transformed = transform(metrics_data)
        if transformed is None:
            return None
        return receive(transformed, *args, **kwargs)

    reader._receive_metrics = receive_transformed
