"""Exporter wrappers: redaction on the way out, in the exporters' worker threads.

In front of the SDK's OTLP/HTTP span and log exporters the wrappers encode the request themselves, redacting on
the way (:mod:`otel_distro.otlp_wire`, also with redaction off); in front of any other exporter they redact copies
before delegating.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from otel_distro.redaction.rules import Redactor

_log = logging.getLogger("otel_distro")

# ---------------------------------------------------------------- exporter wrappers

_reported: set[str] = set()


def _report_once(what: str, err: Exception) -> None:
    if what not in _reported:
        _reported.add(what)
        _log.warning("otel-distro: redaction of %s failed, those items were dropped (further "
                     "failures not reported): %s: %s", what, type(err).__name__, err)


def _report_encoding_once(what: str, err: Exception) -> None:
    if "encode " + what not in _reported:
        _reported.add("encode " + what)
        _log.warning("otel-distro: encoding %s for OTLP failed, that batch went the copy-based way through "
                     "the SDK's encoder (further failures not reported): %s: %s", what, type(err).__name__, err)


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


def _span_exporter_class() -> type:
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.trace import Link, Status

    # The SDK reads dropped counts off BoundedAttributes/BoundedList; the copies hold a
    # plain dict and list, so they carry the original's counts themselves.
    class _SpanCopy(ReadableSpan):
        def __init__(self, dropped: tuple[int, int, int], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._dropped = dropped

        dropped_attributes = property(lambda self: self._dropped[0])
        dropped_events = property(lambda self: self._dropped[1])
        dropped_links = property(lambda self: self._dropped[2])

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
            try:
                cleaned = [self._span(s) for s in spans]
            except Exception as err:
                _report_once("spans", err)
                return SpanExportResult.FAILURE
            return self.exporter.export(cleaned)

        def _span(self, span: Any) -> Any:
            r = self.redactor
            status = span.status
            if status is not None and status.description:
                status = Status(status.status_code, r.text(status.description))
            return _SpanCopy(
                (span.dropped_attributes, span.dropped_events, span.dropped_links),
                name=r.text(span.name), context=span.context, parent=span.parent,
                resource=self._resources.get(span.resource), attributes=r.attributes(span.attributes),
                events=[_EventCopy(e.name, r.attributes(e.attributes), e.timestamp, e.dropped_attributes)
                        for e in span.events],
                links=[_LinkCopy(link.context, r.attributes(link.attributes), link.dropped_attributes)
                       for link in span.links],
                kind=span.kind, status=status, start_time=span.start_time, end_time=span.end_time,
                instrumentation_scope=span.instrumentation_scope)

    return RedactingSpanExporter


def _log_exporter_class() -> type:
    import copy

    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope  # noqa: F401
    from opentelemetry.util.types import AnyValue  # noqa: F401

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
            try:
                cleaned = [self._record(r) for r in batch]
            except Exception as err:
                _report_once("log records", err)
                return LogRecordExportResult.FAILURE
            return self.exporter.export(cleaned)

        def _record(self, readable: Any) -> Any:
            r = self.redactor
            inner = copy.copy(readable.log_record)
            inner.body = r.any_value(inner.body)
            inner.attributes = r.attributes(inner.attributes)
            return _RecordCopy(log_record=inner, resource=self._resources.get(readable.resource),
                               instrumentation_scope=readable.instrumentation_scope,
                               limits=readable.limits, dropped=readable.dropped_attributes)

    return RedactingLogExporter


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
            scopes.append(replace(sm, metrics=metrics))
        out.append(replace(rm, resource=resources.get(rm.resource), scope_metrics=scopes))
    return replace(metrics_data, resource_metrics=out)


def _metric_exporter_class() -> type:
    from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult

    class RedactingMetricExporter(_Delegating, MetricExporter):
        """Exports metrics whose point attributes are redacted; runs in the reader's thread."""

        def __init__(self, exporter: Any, redactor: Redactor) -> None:
            _Delegating.__init__(self, exporter, redactor)
            MetricExporter.__init__(self, preferred_temporality=exporter._preferred_temporality,
                                    preferred_aggregation=exporter._preferred_aggregation)

        def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> Any:
            try:
                cleaned = _metric_data(self.redactor, metrics_data)
            except Exception as err:
                _report_once("metrics", err)
                return MetricExportResult.FAILURE
            return self.exporter.export(cleaned, timeout_millis=timeout_millis, **kwargs)

        def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
            return self.exporter.shutdown(timeout_millis=timeout_millis, **kwargs)

        def force_flush(self, timeout_millis: float = 10_000) -> bool:
            return self.exporter.force_flush(timeout_millis=timeout_millis)

    return RedactingMetricExporter


# ---------------------------------------------------------------- OTLP/HTTP: our own encoding

# The SDK's OTLP/HTTP exporters (1.45) by signal: module, class, the word their messages use.
_OTLP_HTTP = {
    "spans": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter", "span"),
    "logs": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter", "logs"),
}
# What _otlp_http_sender reads of them; checked when wrapping.
_OTLP_HTTP_PRIVATE = ("_shutdown", "_metrics", "_max_request_size", "_client")


def _otlp_http_sender(exporter: Any, signal: str) -> Callable[[bytes, int], bool] | None:
    """Sends request bytes as the SDK's OTLP/HTTP ``exporter`` would; None if it is not one we know.

    The only place that uses the exporters' private attributes. Their ``export``
    is ``encode_spans``/``encode_logs`` followed by what ``send`` below does
    (shutdown check, request-size limit, POST through ``_client``, the
    exporter's own metrics), so with our bytes we keep their behaviour. An
    exporter of another class, a subclass with its own ``export``, or an SDK
    whose exporter lacks these attributes gets the copy-based path instead.
    """
    module_name, class_name, word = _OTLP_HTTP[signal]
    module = sys.modules.get(module_name)  # not imported: the exporter is not one of its (no import cost)
    if module is None:
        return None
    try:
        cls = getattr(module, class_name)
        from opentelemetry.exporter.otlp.proto.http._common import (
            RequestPayloadTooLargeError,
            _is_request_too_large,
        )
        from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
    except Exception:  # another SDK version: the exporter's own export() it is
        return None
    if not isinstance(exporter, cls) or type(exporter).export is not cls.export:
        return None
    if not all(hasattr(exporter, name) for name in _OTLP_HTTP_PRIVATE) \
            or not callable(getattr(exporter._client, "export", None)) \
            or not callable(getattr(exporter._metrics, "export_operation", None)):
        return None
    sdk_log = logging.getLogger(cls.__module__)

    def send(data: bytes, count: int) -> bool:
        # = the SDK exporter's export() after its encoding step (its metrics then time the
        # sending only: our encoding ran before).
        if exporter._shutdown:
            sdk_log.warning("Exporter already shutdown, ignoring batch")
            return False
        with exporter._metrics.export_operation(count) as result:
            limit = exporter._max_request_size
            if _is_request_too_large(data, limit):
                sdk_log.warning("Dropping %s batch: serialized size %d bytes exceeds max_request_size %d bytes.",
                                word, len(data), limit)
                result.error = RequestPayloadTooLargeError(
                    f"Serialized {word} request size {len(data)} bytes exceeds max_request_size {limit} bytes.")
                return False
            sent = exporter._client.export(data)
            if not sent.success:
                result.error = sent.error
                result.error_attrs = ({HTTP_RESPONSE_STATUS_CODE: sent.status_code}
                                      if sent.status_code is not None else None)
                return False
        return True

    return send


def _encoding_span_exporter_class() -> type:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from otel_distro import otlp_wire

    class EncodingSpanExporter(_Delegating, SpanExporter):
        """Encodes (and redacts) the spans itself and sends the bytes the OTLP/HTTP exporter's way."""

        def __init__(self, exporter: Any, redactor: Redactor | None,
                     send: Callable[[bytes, int], bool]) -> None:
            super().__init__(exporter, redactor)
            self._encoder = otlp_wire.Encoder(redactor)
            self._send = send
            self._fallback = exporter if redactor is None else _span_exporter_class()(exporter, redactor)

        def export(self, spans: Sequence[Any]) -> Any:
            try:
                data = self._encoder.encode_spans(spans)
            except Exception as err:  # the copies and the SDK's encoder, as before, for this batch
                _report_encoding_once("spans", err)
                return self._fallback.export(spans)
            return SpanExportResult.SUCCESS if self._send(data, len(spans)) else SpanExportResult.FAILURE

    return EncodingSpanExporter


def _encoding_log_exporter_class() -> type:
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    from otel_distro import otlp_wire

    class EncodingLogExporter(_Delegating, LogRecordExporter):
        """Encodes (and redacts) the log records itself and sends the bytes the OTLP/HTTP exporter's way."""

        def __init__(self, exporter: Any, redactor: Redactor | None,
                     send: Callable[[bytes, int], bool]) -> None:
            super().__init__(exporter, redactor)
            self._encoder = otlp_wire.Encoder(redactor)
            self._send = send
            self._fallback = exporter if redactor is None else _log_exporter_class()(exporter, redactor)

        @property
        def encoder(self) -> Any:
            """Encodes records ahead for this exporter's queue (the log bridge does)."""
            return self._encoder

        def export(self, batch: Sequence[Any]) -> Any:
            try:
                data = self._encoder.encode_logs(batch)
            except Exception as err:  # the copies and the SDK's encoder, as before, for this batch
                _report_encoding_once("log records", err)
                return self._export_apart(batch)
            return LogRecordExportResult.SUCCESS if self._send(data, len(batch)) else LogRecordExportResult.FAILURE

        def _export_apart(self, batch: Sequence[Any]) -> Any:
            # Records encoded ahead are bytes already; the SDK's go the copy-based way.
            ahead = [item for item in batch if type(item) is otlp_wire.EncodedLogRecord]
            records = [item for item in batch if type(item) is not otlp_wire.EncodedLogRecord]
            sent = not ahead or self._send(self._encoder.encode_logs(ahead), len(ahead))
            result = self._fallback.export(records) if records else LogRecordExportResult.SUCCESS
            return result if sent else LogRecordExportResult.FAILURE

    return EncodingLogExporter


def wrap_span_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    """The exporter as the provider should use it: redacting, and encoding itself for OTLP/HTTP."""
    send = _otlp_http_sender(exporter, "spans")
    if send is not None:
        return _encoding_span_exporter_class()(exporter, redactor, send)
    return exporter if redactor is None else _span_exporter_class()(exporter, redactor)


def wrap_log_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    """The exporter as the provider should use it: redacting, and encoding itself for OTLP/HTTP."""
    send = _otlp_http_sender(exporter, "logs")
    if send is not None:
        return _encoding_log_exporter_class()(exporter, redactor, send)
    return exporter if redactor is None else _log_exporter_class()(exporter, redactor)


def wrap_metric_exporter(exporter: Any, redactor: Redactor | None) -> Any:
    return exporter if redactor is None else _metric_exporter_class()(exporter, redactor)


def redact_pull_reader(reader: Any, redactor: Redactor | None) -> Any:
    """Have a pull reader (Prometheus) receive redacted metrics: at scrape time, not on record."""
    if redactor is None:
        return reader
    receive = reader._receive_metrics

    def receive_redacted(metrics_data: Any, *args: Any, **kwargs: Any) -> None:
        if metrics_data is None:
            return receive(metrics_data, *args, **kwargs)
        try:
            cleaned = _metric_data(redactor, metrics_data)
        except Exception as err:
            _report_once("metrics", err)
            return None
        return receive(cleaned, *args, **kwargs)

    reader._receive_metrics = receive_redacted
    return reader
