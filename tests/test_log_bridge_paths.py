"""The bridge's two ways into the batch processors give the same exported records.

With only the distro's batch processors on the provider, the bridge worker puts
records straight into their queues; with any other processor it goes through
the SDK's Logger.emit. What is exported must not depend on which way was taken.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.trace import TracerProvider

from otel_distro import logs, resource
from otel_distro.settings import load
from tests.otlp_test_receiver import OtlpTestReceiver


class _Counting(LogRecordProcessor):
    """An application's own processor: its presence turns the direct way off."""

    def __init__(self) -> None:
        self.seen = 0

    def on_emit(self, log_record: Any) -> None:
        self.seen += 1

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


@contextlib.contextmanager
def _scenario_logged(exporter: Any, with_app_processor: bool) -> Iterator[tuple[Any, list | None]]:
    """The records both ways are compared on, logged through the bridge to ``exporter``.

    Yields the span context of the record logged inside a span, and the queues
    the bridge found (None: it went through the SDK's Logger.emit).
    """
    chosen = load({"OTEL_SERVICE_NAME": "paths"})
    provider = logs.build(chosen, resource.build(chosen), log_exporters=[exporter])
    if with_app_processor:
        provider.add_log_record_processor(_Counting())
    logs.remove_bridge()
    bridge = logs.install_bridge(provider, logging.INFO)
    logging.getLogger().setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("t")
    log = logging.getLogger("shop.paths")
    try:
        log.info("plain %s", "line")
        with tracer.start_as_current_span("request") as span:
            log.warning("order %s", "A-7", extra={"item_id": 2, "total": 93.5, "paid": True, "note": "xy"})
            context = span.get_span_context()
        log.info("non-scalar extra", extra={"tags": ["a", "b"], "obj": object.__new__(_Counting)})
        log.info("event", extra={"otel.event.name": "shop.checkout"})
        log.error("token=sk-%s in a message", "a" * 30, extra={"password": "hunter2"})
        bridge.flush()
        provider.force_flush()
        yield context, bridge.direct_queues.current()
    finally:
        logs.remove_bridge()
        provider.shutdown()


def _exported(with_app_processor: bool) -> tuple[list[dict], list | None]:
    memory = InMemoryLogRecordExporter()
    with _scenario_logged(memory, with_app_processor) as (context, queues):
        out = []
        for item in memory.get_finished_logs():
            record = item.log_record
            attributes = {k: v for k, v in (record.attributes or {}).items() if k != "obj"}
            out.append({
                "body": record.body, "severity_text": record.severity_text,
                "severity_number": record.severity_number, "attributes": attributes,
                "has_obj": "obj" in (record.attributes or {}),
                "event_name": record.event_name, "flags": int(record.trace_flags or 0),
                "trace": (record.trace_id or 0) == context.trace_id, "span": (record.span_id or 0) == context.span_id,
                "timestamp_set": bool(record.timestamp), "observed_set": bool(record.observed_timestamp),
                "resource": dict(item.resource.attributes)["service.name"],
                "scope": item.instrumentation_scope.name, "dropped": item.dropped_attributes,
            })
        return out, queues


def test_direct_and_sdk_ways_export_the_same_records() -> None:
    direct, direct_queues = _exported(with_app_processor=False)
    through_sdk, sdk_queues = _exported(with_app_processor=True)
    assert direct_queues is not None and len(direct_queues) == 1  # the direct way was taken ...
    assert sdk_queues is None  # ... and here it was not
    assert len(direct) == 5
    assert direct == through_sdk
    inside = direct[1]
    assert inside["trace"] and inside["span"] and inside["flags"] & 1  # sampled
    assert inside["attributes"] == {"item_id": 2, "total": 93.5, "paid": True, "note": "xy"}
    assert direct[4]["attributes"]["password"] == "[REDACTED]"
    assert direct[3]["event_name"] == "shop.checkout"


@pytest.mark.parametrize("env", [{"OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT": "2"},
                                 {"OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "1"},
                                 {"OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4096"}],
                         ids=["count", "length", "length-not-reached"])
def test_attribute_limits_are_applied_on_either_way(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in env.items():  # the SDK reads its limits from the environment itself
        monkeypatch.setenv(name, value)
    direct, _ = _exported(with_app_processor=False)
    through_sdk, _ = _exported(with_app_processor=True)
    assert direct == through_sdk
    inside = direct[1]["attributes"]
    if "OTEL_LOGRECORD_ATTRIBUTE_COUNT_LIMIT" in env:
        assert len(inside) == 2 and direct[1]["dropped"] == 2
    elif env["OTEL_LOGRECORD_ATTRIBUTE_VALUE_LENGTH_LIMIT"] == "4096":
        assert inside["note"] == "xy" and direct[1]["dropped"] == 0
    else:
        assert inside["note"] == "x" and direct[0]["body"] == "plain line"
        assert all(len(v) <= 1 for v in inside.values() if isinstance(v, str))


def _otlp_exported(with_app_processor: bool) -> tuple[list[Any], list | None]:
    """The decoded requests an OTLP/HTTP exporter sent (test receiver), ids and times masked."""
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    with OtlpTestReceiver() as receiver:
        exporter = OTLPLogExporter(endpoint=f"{receiver.endpoint}/v1/logs", timeout=5)
        with _scenario_logged(exporter, with_app_processor) as (context, queues):
            records = []
            for path, body in receiver.raw:
                assert path == "/v1/logs"
                for rl in ExportLogsServiceRequest.FromString(body).resource_logs:
                    for sl in rl.scope_logs:
                        for record in sl.log_records:
                            assert record.time_unix_nano and record.observed_time_unix_nano
                            assert record.trace_id in (b"", context.trace_id.to_bytes(16, "big"))
                            record.time_unix_nano = record.observed_time_unix_nano = 1
                            record.trace_id = b"t" if record.trace_id else b""
                            record.span_id = b"s" if record.span_id else b""
                            for attribute in record.attributes:
                                if attribute.key == "obj":  # its text is the object's address
                                    attribute.value.string_value = "<object>"
                            records.append((rl.resource.SerializeToString(), sl.scope.SerializeToString(),
                                            record.SerializeToString(deterministic=True)))
            return records, queues


def test_records_encoded_ahead_are_the_bytes_the_exporter_would_send() -> None:
    ahead, ahead_queues = _otlp_exported(with_app_processor=False)
    through_sdk, sdk_queues = _otlp_exported(with_app_processor=True)
    assert ahead_queues is not None and ahead_queues[0].encoder is not None  # encoded by the bridge ...
    assert sdk_queues is None  # ... and here by the exporter, from the SDK's records
    assert len(ahead) == 5
    assert ahead == through_sdk
    sent = b"".join(record for _, _, record in ahead)
    assert b"hunter2" not in sent and b"sk-aaaa" not in sent and sent.count(b"[REDACTED]") >= 2
