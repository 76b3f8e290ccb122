"""Seam: a wrapping metric exporter states the wrapped exporter's preferences.

Tested with opentelemetry-sdk 1.45: ``MetricExporter.__init__`` keeps the temporality and aggregation
preferences as ``_preferred_temporality`` and ``_preferred_aggregation``, and the readers read them off
the exporter they are given. Without them (another SDK version) the wrapper states none: the SDK's
defaults (cumulative), and the problem is reported.
"""

from __future__ import annotations

from typing import Any

from otel_distro._internal_errors import report_internal_error


def preferences(exporter: Any) -> tuple[Any, Any]:
    """The (temporality, aggregation) preferences of ``exporter``, or (None, None) when they cannot be read."""
    try:
        return exporter._preferred_temporality, exporter._preferred_aggregation
    except AttributeError as err:
        report_internal_error("sdk_private.metric_exporter", "a metric exporter's preferences could not be read; "
                              "its redacting wrapper uses the SDK's defaults (cumulative)", err)
        return None, None
