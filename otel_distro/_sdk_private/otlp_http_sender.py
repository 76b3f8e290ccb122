"""Seam: sending our own OTLP bytes through the SDK's OTLP/HTTP exporter, and reading its Collector's answers.

Tested with opentelemetry-exporter-otlp-proto-http 1.45 and opentelemetry-exporter-otlp-common 0.66b0.
The exporters' ``export`` is ``encode_spans``/``encode_logs`` followed by what :func:`sender` does
(shutdown check, request-size limit, POST through ``_client``, the exporter's own metrics), so with our
bytes we keep their behaviour. It relies on the exporter's ``_shutdown``, ``_metrics``,
``_max_request_size`` and ``_client`` (and ``_client._transport`` for :func:`watch_answers`). An exporter
of another class, a subclass with its own ``export``, or an SDK whose exporter lacks these attributes gets
the public path: the exporter's own ``export``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

_log = logging.getLogger("otel_distro")

# The SDK's OTLP/HTTP exporters by signal: module, class, the word their messages use.
_OTLP_HTTP = {
    "spans": ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "OTLPSpanExporter", "span"),
    "logs": ("opentelemetry.exporter.otlp.proto.http._log_exporter", "OTLPLogExporter", "logs"),
    "metrics": ("opentelemetry.exporter.otlp.proto.http.metric_exporter", "OTLPMetricExporter", "metrics"),
}
_PRIVATE = ("_shutdown", "_metrics", "_max_request_size", "_client")


def _known_exporter(exporter: Any, signal: str) -> bool:
    module_name, class_name, _ = _OTLP_HTTP[signal]
    module = sys.modules.get(module_name)  # not imported: the exporter is not one of its (no import cost)
    cls = getattr(module, class_name, None) if module is not None else None
    return cls is not None and isinstance(exporter, cls) and type(exporter).export is cls.export


def sender(exporter: Any, signal: str) -> Callable[[bytes, int], bool] | None:
    """Sends request bytes as the SDK's OTLP/HTTP ``exporter`` would; None if it is not one we know."""
    if not _known_exporter(exporter, signal):
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http._common import (
            RequestPayloadTooLargeError,
            _is_request_too_large,
        )
        from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE
    except ImportError:  # another SDK version: the exporter's own export() it is
        return None
    if not all(hasattr(exporter, name) for name in _PRIVATE) \
            or not callable(getattr(exporter._client, "export", None)) \
            or not callable(getattr(exporter._metrics, "export_operation", None)):
        return None
    word = _OTLP_HTTP[signal][2]
    sdk_log = logging.getLogger(type(exporter).__module__)

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


# ---------------------------------------------------------------- the Collector's answers

_REJECTED_FIELD = {"spans": "rejected_spans", "logs": "rejected_log_records", "metrics": "rejected_data_points"}
_RESPONSES = {
    "spans": ("opentelemetry.proto.collector.trace.v1.trace_service_pb2", "ExportTraceServiceResponse"),
    "logs": ("opentelemetry.proto.collector.logs.v1.logs_service_pb2", "ExportLogsServiceResponse"),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.metrics_service_pb2", "ExportMetricsServiceResponse"),
}
_TLS_FAILURES = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


class _AnswerWatch:
    """Wraps the exporter's HTTP transport: reports partial successes and TLS trust failures (rate limited)."""

    def __init__(self, transport: Any, signal: str, interval: Callable[[], float], ca_variable: str) -> None:
        self._transport = transport
        self._signal = signal
        self._interval = interval
        self._ca_variable = ca_variable
        self._next: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = self._transport.request(*args, **kwargs)
        try:
            self._look_at(result)
        except Exception as err:
            from otel_distro._internal_errors import report_internal_error

            report_internal_error("otlp_http_sender.answers", "a Collector's answer could not be read for "
                                  "partial success; exports go on", err)
        return result

    def _look_at(self, result: Any) -> None:
        error = result.error
        if error is not None and any(mark in str(error) for mark in _TLS_FAILURES):
            _shared_tls_report(self._ca_variable, error)
            return
        status = result.status_code
        if status is None or not 200 <= status < 300:
            return
        body = result.content()
        if not body:
            return
        module_name, class_name = _RESPONSES[self._signal]
        response = getattr(__import__(module_name, fromlist=[class_name]), class_name).FromString(body)
        if not response.HasField("partial_success"):
            return
        rejected = getattr(response.partial_success, _REJECTED_FIELD[self._signal])
        message = response.partial_success.error_message
        if not rejected and not message:
            return
        key = "partial"
        self._counts[key] = self._counts.get(key, 0) + rejected
        now = time.monotonic()
        if now >= self._next.get(key, 0.0):
            self._next[key] = now + self._interval()
            total, self._counts[key] = self._counts[key], 0
            _log.warning("otel-distro: the Collector rejected %d %s (partial success): %s [one such line per "
                         "%gs: OTEL_DISTRO_EXPORT_ERROR_INTERVAL]", total, _ITEMS[self._signal],
                         message or "no reason given", self._interval())


_ITEMS = {"spans": "spans", "logs": "log records", "metrics": "metric data points"}
_tls_next = [0.0]
tls_interval = [60.0]


def _shared_tls_report(ca_variable: str, error: Any) -> None:
    # One line for every signal: the three exporters fail for the same reason.
    now = time.monotonic()
    if now < _tls_next[0]:
        return
    _tls_next[0] = now + tls_interval[0]
    reason = re.search(r"certificate verify failed: ([^()'\"]+)", str(error))
    _log.warning("otel-distro: the Collector's TLS certificate is not trusted (%s): set %s (or, for one signal, "
                 "OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_CERTIFICATE) to the file of the CA that signed it "
                 "[one such line per %gs: OTEL_DISTRO_EXPORT_ERROR_INTERVAL]",
                 reason.group(1).strip() if reason else type(error).__name__, ca_variable, tls_interval[0])


def watch_answers(exporter: Any, signal: str) -> None:
    """Have the exporter's answers read for partial success and its TLS failures named; skipped when the
    exporter is not one we know. Lines are rate limited by :data:`tls_interval` (the export-error interval)."""
    if not _known_exporter(exporter, signal):
        return
    client = getattr(exporter, "_client", None)
    transport = getattr(client, "_transport", None)
    if transport is None or not callable(getattr(transport, "request", None)) or isinstance(transport, _AnswerWatch):
        return
    client._transport = _AnswerWatch(transport, signal, lambda: tls_interval[0], "OTEL_EXPORTER_OTLP_CERTIFICATE")
