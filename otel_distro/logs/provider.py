"""The logger provider: the exporters OTEL_LOGS_EXPORTER names, each behind a redacting batch processor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.resources import Resource

from otel_distro import redaction, signal_exporters
from otel_distro.settings import Settings

# The batch processor's queue and batch sizes are settings (OTEL_BLRP_MAX_QUEUE_SIZE,
# _MAX_EXPORT_BATCH_SIZE). Their defaults: the SDK's 2048-record queue drops records
# in bursts (measured: ~70k lines/s); 65,536 holds a 50,000 lines/s burst for a
# second (bench/bench_logs.py). Batches stay at the SDK's 512: records that wait for
# bigger ones reach the collector's oldest generation and bring on full collections.


def exporters(settings: Settings) -> list[LogRecordExporter]:
    return signal_exporters.chosen_exporters(settings, "logs")


class DrainBridge(LogRecordProcessor):
    """First processor of the provider: a flush of the provider first empties the bridge's queue."""

    def on_emit(self, log_record: Any) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        from otel_distro.logs import takeover

        handler = takeover.bridge()
        if handler is not None:
            handler.drain(timeout_millis / 1000)
        return True


def leading_processors(settings: Settings) -> list[LogRecordProcessor]:
    """What comes before the exporters' processors in any logger provider the bridge feeds (a file's too)."""
    from otel_distro.ai import content  # GenAI prompt/completion policy: before the batch processors copy records

    return [DrainBridge(), content.ContentLogProcessor(content.policy_from_settings(settings))]


def build(settings: Settings, resource: Resource,
          log_exporters: Sequence[LogRecordExporter] | None = None) -> LoggerProvider:
    provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for processor in leading_processors(settings):
        provider.add_log_record_processor(processor)
    redactor = redaction.from_settings(settings)
    for exporter in exporters(settings) if log_exporters is None else log_exporters:
        provider.add_log_record_processor(BatchLogRecordProcessor(
            redaction.wrap_log_exporter(exporter, redactor),
            max_queue_size=settings.log_queue_size, max_export_batch_size=settings.log_export_batch_size))
    return provider
