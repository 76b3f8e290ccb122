"""What the contrib database instrumentations (0.66) leave out of the stable database conventions.

* ``db.client.operation.duration``: the SQLAlchemy, asyncpg and Redis instrumentations trace each operation but do
  not record the stable database metric. A span processor turns every finished database CLIENT span into one
  histogram point, with the metric's attributes taken from the span's (stable conventions:
  ``OTEL_SEMCONV_STABILITY_OPT_IN`` holds ``database`` by the distro's default). The DB-API ones (psycopg,
  psycopg2, pymysql) record it themselves: their spans are left alone, so no operation is counted twice. Spans a
  sampler dropped are not recorded, so neither is their duration.
* ``db.operation.name`` on the span: the DB-API and asyncpg instrumentations name their span after the operation
  (the query's first word) but do not set the attribute; it is set from the name when the span starts.

Which instrumentation does what comes from the integration registry.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

from otel_distro._internal_errors import report_internal_error
from otel_distro.integrations import registry
from otel_distro.metrics import SECONDS_BUCKETS
from otel_distro.version import __version__

METRIC = "db.client.operation.duration"
# The span attributes the metric keeps (the stable database metric's attribute set).
_KEPT = ("db.system.name", "db.operation.name", "db.collection.name", "db.namespace", "db.response.status_code",
         "server.address", "server.port", "error.type")
_RECORD_THEIR_OWN, _SPAN_NAME_IS_OPERATION = registry.database_scopes()
_OPERATION = "db.operation.name"


class DatabaseOperationDuration(SpanProcessor):
    """Records one ``db.client.operation.duration`` point per finished database CLIENT span."""

    late_on_end_ok = True  # it skips SERVER spans, the only ones whose on_end is batched

    def __init__(self, meter_provider: metrics.MeterProvider | None = None) -> None:
        meter = metrics.get_meter("otel_distro.db", __version__, meter_provider)
        self.duration = meter.create_histogram(
            METRIC, unit="s", description="Duration of database client operations.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is not SpanKind.CLIENT:
            return
        attributes = span.attributes or {}
        system = attributes.get("db.system.name") or attributes.get("db.system")
        if system is None or span.end_time is None or span.start_time is None:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name in _RECORD_THEIR_OWN:
            return
        try:
            self.duration.record((span.end_time - span.start_time) / 1e9, self._attributes(span, attributes, system))
        except Exception as err:
            report_internal_error("db_metrics.record", "a database operation's duration was not recorded", err)

    @staticmethod
    def _attributes(span: ReadableSpan, attributes: Any, system: Any) -> dict[str, Any]:
        kept = {key: attributes[key] for key in _KEPT if key in attributes}
        kept["db.system.name"] = system
        if "error.type" not in kept and span.status.status_code is StatusCode.ERROR:
            kept["error.type"] = "_OTHER"
        return kept

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if span.kind is not SpanKind.CLIENT:
            return
        scope = span.instrumentation_scope
        if scope is not None and scope.name in _SPAN_NAME_IS_OPERATION and span.name:
            span.set_attribute(_OPERATION, span.name)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
