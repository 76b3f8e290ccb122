"""Exporter wrappers: redaction on the way out, in the exporters' worker threads.

In front of the SDK's OTLP/HTTP span and log exporters the wrappers encode the request themselves, redacting on
the way (:mod:`otel_distro.otlp_wire`, also with redaction off); in front of any other exporter they redact copies
before delegating.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: F401 (the record copy's fields)
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AnyValue  # noqa: F401 (the record copy's fields)

from otel_distro import otlp_wire
from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import FastPath, metric_exporter, otlp_http_sender, prometheus_reader
from otel_distro.ai import content as ai_content
from otel_distro.redaction.rules import Redactor

# ---------------------------------------------------------------- exporter wrappers


def _report_dropped(what: str, err: Exception) -> None:
    report_internal_error(f"redaction.{what}", f"redaction of {what} failed, those items were dropped", err)


def _export_copies(exporter: Any, items: Sequence[Any], copy_one: Callable[[Any], Any], what: str,
                   failure: Any) -> Any:
    """Exports a redacted copy of each item; one that cannot be copied is dropped alone (never its batch)
    and reported. ``failure`` is the result when no item is left to export."""
    copies = []
    for item in items:
        try:
            copies.append(copy_one(item))
        except Exception as err:
            _report_dropped(what, err)
    return exporter.export(copies) if copies or not items else failure


class _Delegating:
    """Forwards everything but ``export`` to the wrapped exporter."""

    def __init__(self, exporter: Any, redactor: Redactor | None) -> None:
        self.exporter = exporter
        self.redactor = redactor

    def shutdown(self, *args: Any, **kwargs: Any) -> Any:
        return self.exporter.shutdown(*args, **kwargs)

    def force_flush(self, *args: Any, **kwargs: Any) -> Any:
        return self.exporter.force_flush(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exporter, name)


class _ResourceCache:
    """Resources are shared by every item: redact each one once."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor
        self._done: dict[int, tuple[Any, Any]] = {}
        self._generation = redactor.generation

    def get(self, resource: Any) -> Any:
        if resource is None:
            return None
        if self._redactor.generation != self._generation:  # the rules changed live
            self._done = {}
            self._generation = self._redactor.generation
        hit = self._done.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1]
        cleaned = self._redactor.resource(resource)
        if len(self._done) > 64:
            self._done.clear()
        self._done[id(resource)] = (resource, cleaned)
        return cleaned


# The SDK reads dropped counts off BoundedAttributes/BoundedList; the copies hold a
# plain dict and list, so they carry the original's counts themselves.
class _SpanCopy(ReadableSpan):
    def __init__(self, dropped: tuple[int, int, int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._dropped = dropped

    dropped_attributes = property(lambda self: self._dropped[0])
    dropped_events = property(lambda self: self._dropped[1])
    dropped_links = property(lambda self: self._dropped[2])


def _copy_of(span: Any, **changed: Any) -> _SpanCopy:
    """A copy of ``span`` with the fields named in ``changed`` replaced, its dropped counts kept."""
    fields = {"name": span.name, "context": span.context, "parent": span.parent, "resource": span.resource,
              "attributes": span.attributes, "events": span.events, "links": span.links, "kind": span.kind,
              "status": span.status, "start_time": span.start_time, "end_time": span.end_time,
              "instrumentation_scope": span.instrumentation_scope}
    return _SpanCopy((span.dropped_attributes, span.dropped_events, span.dropped_links), **{**fields, **changed})


class _EventCopy(Event):
    def __init__(self, name: str, attributes: Any, timestamp: Any, dropped: int) -> None:
        super().__init__(name, attributes, timestamp)
        self._dropped = dropped

    dropped_attributes = property(lambda self: self._dropped)


class _LinkCopy(Link):
    def __init__(self, context: Any, attributes: Any, dropped: int) -> None:
        super().__init__(context, attributes)
        self._dropped = dropped

    dropped_attributes = property(lambda self: self._dropped)


class RedactingSpanExporter(_Delegating, SpanExporter):
    """Exports redacted copies of the spans; runs in the batch processor's thread."""

    def __init__(self, exporter: Any, redactor: Redactor) -> None:
        super().__init__(exporter, redactor)
        self._resources = _ResourceCache(redactor)

    def export(self, spans: Sequence[Any]) -> Any:
        return _export_copies(self.exporter, spans, self._span, "spans", SpanExportResult.FAILURE)

    def _span(self, span: Any) -> Any:
        r = self.redactor
        status = span.status
        if status is not None and status.description:
            status = Status(status.status_code, r.text(status.description))
        return _copy_of(
            span, name=r.name(span.name), resource=self._resources.get(span.resource),
            attributes=r.attributes(span.attributes),
            events=[_EventCopy(r.name(e.name), r.attributes(e.attributes), e.timestamp, e.dropped_attributes)
                    for e in span.events],
            links=[_LinkCopy(link.context, r.attributes(link.attributes), link.dropped_attributes)
                   for link in span.links],
            status=status, instrumentation_scope=r.scope(span.instrumentation_scope))


@dataclasses.dataclass(frozen=True)
class _RecordCopy(ReadableLogRecord):
    """Carries the original's dropped count (the SDK reads it off BoundedAttributes)."""

    dropped: int = 0

    @property
    def dropped_attributes(self) -> int:
        return self.dropped


class RedactingLogExporter(_Delegating, LogRecordExporter):
    """Exports redacted copies of the log records; runs in the batch processor's thread."""

    def __init__(self, exporter: Any, redactor: Redactor) -> None:
        super().__init__(exporter, redactor)
        self._resources = _ResourceCache(redactor)

    def export(self, batch: Sequence[Any]) -> Any:
        return _export_copies(self.exporter, batch, self._record, "log records", LogRecordExportResult.FAILURE)

    def _record(self, readable: Any) -> Any:
        r = self.redactor
        inner = copy.copy(readable.log_record)
        inner.body = r.any_value(inner.body)
        inner.attributes = r.attributes(inner.attributes)
        if inner.event_name:
            inner.event_name = r.name(inner.event_name)
        return _RecordCopy(log_record=inner, resource=self._resources.get(readable.resource),
                           instrumentation_scope=r.scope(readable.instrumentation_scope),
                           limits=readable.limits, dropped=readable.dropped_attributes)


def _metric_data(redactor: Redactor, metrics_data: Any) -> Any:
    """A copy of MetricsData with every point's attributes redacted (keys and values)."""
    resources = _ResourceCache(redactor)
    replace = dataclasses.replace
    out = []
    for rm in metrics_data.resource_metrics:
        scopes = []
        for sm in rm.scope_metrics:
            metrics = []
            for metric in sm.metrics:
                points = [replace(p, attributes=redactor.attributes(p.attributes))
                          for p in metric.data.data_points]
                metrics.append(replace(metric, data=replace(metric.data, data_points=points)))
            scopes.append(replace(sm, scope=redactor.scope(sm.scope), metrics=metrics))
        out.append(replace(rm, resource=resources.get(rm.resource), scope_metrics=scopes))
    return replace(metrics_data, resource_metrics=out)


class RedactingMetricExporter(_Delegating, MetricExporter):
    """Exports metrics whose point attributes are redacted; runs in the reader's thread."""

    def __init__(self, exporter: Any, redactor: Redactor) -> None:
        _Delegating.__init__(self, exporter, redactor)
        temporality, aggregation = metric_exporter.preferences(exporter)
        MetricExporter.__init__(self, preferred_temporality=temporality, preferred_aggregation=aggregation)

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
        try:
            cleaned = _metric_data(self.redactor, metrics_data)
        except Exception as err:
            _report_dropped("metrics", err)
            return MetricExportResult.FAILURE
        return self.exporter.export(cleaned, timeout_millis=timeout_millis, **kwargs)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.exporter.force_flush(timeout_millis=timeout_millis)


# ---------------------------------------------------------------- OTLP/HTTP: our own encoding


class EncodingSpanExporter(_Delegating, SpanExporter):
    """Encodes (and redacts) the spans itself and sends the bytes the OTLP/HTTP exporter's way."""

    def __init__(self, exporter: Any, redactor: Redactor | None,
                 send: Callable[[bytes, int], bool]) -> None:
        super().__init__(exporter, redactor)
        self._encoder = otlp_wire.Encoder(redactor)
        self._send = send
        fallback = exporter if redactor is None else RedactingSpanExporter(exporter, redactor)
        # Any failure of our encoding or sending: the copies and the SDK's encoder from then on.
        self._export = FastPath("otlp_http_sender.spans", self._encode_and_send, fallback.export)

    def export(self, spans: Sequence[Any]) -> Any:
        return self._export(spans)

    def _encode_and_send(self, spans: Sequence[Any]) -> Any:
        data = self._encoder.encode_spans(spans)
        return SpanExportResult.SUCCESS if self._send(data, len(spans)) else SpanExportResult.FAILURE


class EncodingLogExporter(_Delegating, LogRecordExporter):
    """Encodes (and redacts) the log records itself and sends the bytes the OTLP/HTTP exporter's way."""

    def __init__(self, exporter: Any, redactor: Redactor | None,
                 send: Callable[[bytes, int], bool]) -> None:
        super().__init__(exporter, redactor)
        self._encoder = otlp_wire.Encoder(redactor)
        self._send = send
        self._fallback = exporter if redactor is None else RedactingLogExporter(exporter, redactor)
        # Any failure of our encoding or sending: records encoded ahead are sent as they are, the
        # others as copies through the SDK's encoder, from then on.
        self._export = FastPath("otlp_http_sender.logs", self._encode_and_send, self._export_apart)

    @property
    def encoder(self) -> Any:
        """Encodes records ahead for this exporter's queue (the log bridge does)."""
        return self._encoder

    def export(self, batch: Sequence[Any]) -> Any:
        return self._export(batch)

    def _encode_and_send(self, batch: Sequence[Any]) -> Any:
        data = self._encoder.encode_logs(batch)
        return LogRecordExportResult.SUCCESS if self._send(data, len(batch)) else LogRecordExportResult.FAILURE

    def _export_apart(self, batch: Sequence[Any]) -> Any:
        # Records encoded ahead are bytes already; the SDK's go the copy-based way.
        ahead = [item for item in batch if type(item) is otlp_wire.EncodedLogRecord]
        records = [item for item in batch if type(item) is not otlp_wire.EncodedLogRecord]
        sent = not ahead or self._send(self._encoder.encode_logs(ahead), len(ahead))
        result = self._fallback.export(records) if records else LogRecordExportResult.SUCCESS
        return result if sent else LogRecordExportResult.FAILURE


class ContentPolicyAtExport(_Delegating, SpanExporter):
    """Hands each batch on, GenAI spans first given the content policy on copies when the policy could not be
    applied as they ended (``ai.content.policy_at_export``); otherwise one lookup per batch."""

    def __init__(self, exporter: Any) -> None:
        super().__init__(exporter, None)

    def export(self, spans: Sequence[Any]) -> Any:
        policy = ai_content.policy_at_export()
        if policy is None:
            return self.exporter.export(spans)
        return _export_copies(self.exporter, spans, lambda span: _with_content_policy(span, policy),
                              "GenAI spans (content policy)", SpanExportResult.FAILURE)


def _with_content_policy(span: Any, policy: Any) -> Any:
    if not ai_content.is_genai(span.attributes):
        return span
    attributes = policy.attributes(span.attributes)
    events = policy.events(span.events) if span.events else None
    if attributes is None and events is None:
        return span
    return _copy_of(span, attributes=span.attributes if attributes is None else attributes,
                    events=span.events if events is None else events)


def wrap_span_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    """The exporter as the provider should use it: redacting, encoding itself for OTLP/HTTP, and applying the
    GenAI content policy where spans could not be changed as they ended."""
    otlp_http_sender.watch_answers(exporter, "spans")
    send = otlp_http_sender.sender(exporter, "spans")
    if send is not None:
        return ContentPolicyAtExport(EncodingSpanExporter(exporter, redactor, send))
    return ContentPolicyAtExport(exporter if redactor is None else RedactingSpanExporter(exporter, redactor))


def wrap_log_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    """The exporter as the provider should use it: redacting, and encoding itself for OTLP/HTTP."""
    otlp_http_sender.watch_answers(exporter, "logs")
    send = otlp_http_sender.sender(exporter, "logs")
    if send is not None:
        return EncodingLogExporter(exporter, redactor, send)
    return exporter if redactor is None else RedactingLogExporter(exporter, redactor)


def wrap_metric_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    otlp_http_sender.watch_answers(exporter, "metrics")
    return exporter if redactor is None else RedactingMetricExporter(exporter, redactor)


def redact_pull_reader(reader: Any, redactor: Redactor | None) -> Any:
    """Have a pull reader (Prometheus) receive redacted metrics: at scrape time, not on record."""
    if redactor is None:
        return reader

    def redacted(metrics_data: Any) -> Any:
        try:
            return _metric_data(redactor, metrics_data)
        except Exception as err:
            _report_dropped("metrics", err)
            return None

    prometheus_reader.transform_received(reader, redacted)
    return reader
