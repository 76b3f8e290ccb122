"""The meter provider: OTLP push, an optional Prometheus pull endpoint, seconds-shaped buckets."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, MetricReader
from opentelemetry.sdk.metrics.view import (
    DropAggregation,
    View,
)
from opentelemetry.sdk.resources import Resource

from otel_distro import forksafe, redaction
from otel_distro._sdk_private import advisory_buckets, metric_locks_after_fork
from otel_distro.settings import Settings

_log = logging.getLogger("otel_distro")

# Semantic-convention boundaries for durations in seconds (HTTP, RPC, DB ...).
SECONDS_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class SecondsBucketAggregation(advisory_buckets.AdvisedOrDefaultBuckets):
    """The instrument's own advisory boundaries if it has some, else SECONDS_BUCKETS.

    The SDK's fallback (0, 5, 10 ... 10000) is shaped for milliseconds: every
    request would land in the first bucket and p95 would mean nothing.
    """

    def __init__(self) -> None:
        super().__init__(SECONDS_BUCKETS)


def views() -> list[View]:
    return [
        View(instrument_type=Histogram, instrument_unit="s", aggregation=SecondsBucketAggregation()),
        # The contrib Celery instrumentor's runtime histogram (unit "seconds", so
        # millisecond-shaped buckets) duplicates celery.task.duration.
        View(instrument_name="flower.task.runtime.seconds", aggregation=DropAggregation()),
    ]


_DELTA = AggregationTemporality.DELTA
_CUMULATIVE = AggregationTemporality.CUMULATIVE


def temporality(preference: str) -> dict[type, AggregationTemporality]:
    """The spec's three OTLP temporality preferences."""
    if preference == "delta":
        return {Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
                ObservableCounter: _DELTA, ObservableUpDownCounter: _CUMULATIVE,
                ObservableGauge: _CUMULATIVE}
    if preference == "lowmemory":
        return {Counter: _DELTA, UpDownCounter: _CUMULATIVE, Histogram: _DELTA,
                ObservableCounter: _CUMULATIVE, ObservableUpDownCounter: _CUMULATIVE,
                ObservableGauge: _CUMULATIVE}
    return {kind: _CUMULATIVE for kind in (Counter, UpDownCounter, Histogram, ObservableCounter,
                                           ObservableUpDownCounter, ObservableGauge)}


@dataclass
class PullEndpoint:
    """A running Prometheus scrape endpoint."""

    host: str
    port: int
    server: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def prometheus_reader(settings: Settings) -> tuple[MetricReader, PullEndpoint | None]:
    """A Prometheus reader and its HTTP endpoint; a taken port gives a warning, not a crash."""
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry, start_http_server

    # Own registry: prometheus_client's default one adds its own process metrics,
    # which would duplicate ours under other names.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    try:
        server, _thread = start_http_server(settings.prometheus_port, addr=settings.prometheus_host,
                                            registry=registry)
    except OSError as err:
        _log.warning("otel-distro: Prometheus endpoint %s:%s not started (%s); metrics still go "
                     "to the other exporters", settings.prometheus_host, settings.prometheus_port,
                     err.strerror or err)
        return reader, None
    host, port = server.server_address[:2]
    if not _loopback(settings.prometheus_host):
        _log.warning("otel-distro: the Prometheus endpoint listens on %s:%s, open to every network this host "
                     "is on; its target_info shows the host name, user and command line "
                     "(OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1 keeps it local)", settings.prometheus_host, port)
    return reader, PullEndpoint(host=host, port=port, server=server)


def _loopback(host: str) -> bool:
    import ipaddress

    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


class _AlreadyReported(logging.Filter):
    """Drops the SDK's complaint about a variable the distro has validated and reported itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE" not in record.getMessage()


def readers(settings: Settings) -> tuple[list[MetricReader], PullEndpoint | None]:
    chosen: list[MetricReader] = []
    endpoint = None
    redactor = redaction.from_settings(settings)  # point attributes, at export/scrape time
    for name in settings.metrics_exporter:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            # The SDK reads the temporality variable too and would complain a second
            # time about a value settings.py has already reported.
            sdk_log = logging.getLogger("opentelemetry.exporter.otlp.common._aggregation")
            quiet = _AlreadyReported()
            sdk_log.addFilter(quiet)
            try:
                exporter = forksafe.track(OTLPMetricExporter(
                    endpoint=settings.signal_endpoint("metrics"),
                    timeout=settings.signal_timeout_s("metrics"),
                    preferred_temporality=temporality(settings.metrics_temporality)))
            finally:
                sdk_log.removeFilter(quiet)
            chosen.append(PeriodicExportingMetricReader(
                redaction.wrap_metric_exporter(exporter, redactor),
                export_interval_millis=settings.metric_export_interval_ms,
                export_timeout_millis=settings.metric_export_timeout_ms or settings.signal_timeout_s("metrics") * 1000))
        elif name == "prometheus":
            reader, endpoint = prometheus_reader(settings)
            chosen.append(redaction.redact_pull_reader(reader, redactor))
        elif name == "console":
            from opentelemetry.sdk.metrics.export import (
                ConsoleMetricExporter,
                PeriodicExportingMetricReader,
            )

            chosen.append(PeriodicExportingMetricReader(
                redaction.wrap_metric_exporter(ConsoleMetricExporter(), redactor),
                export_interval_millis=settings.metric_export_interval_ms))
    return chosen, endpoint


class _OneViewTwoScopes(logging.Filter):
    """Drops the SDK's "conflicting metrics identities" warning when both sides are the same View.

    The SDK compares name, unit and aggregation but not the instrumentation scope: with the requests
    and httpx instrumentations both installed, each scope's ``http.client.request.duration`` matches
    the seconds View, and the SDK warns although the two streams are told apart by their scopes.
    One View matching two instruments of one scope cannot happen (a meter returns its existing
    instrument), so the same View on both sides is always this harmless case.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        return not (isinstance(args, tuple) and len(args) == 2 and args[0] is args[1]
                    and "conflicting metrics identities" in str(record.msg))


_VIEW_WARNINGS = "opentelemetry.sdk.metrics._internal.metric_reader_storage"


def build(settings: Settings, resource: Resource,
          metric_readers: Sequence[MetricReader]) -> MeterProvider:
    warnings = logging.getLogger(_VIEW_WARNINGS)
    if not any(isinstance(f, _OneViewTwoScopes) for f in warnings.filters):
        warnings.addFilter(_OneViewTwoScopes())
    provider = MeterProvider(resource=resource, metric_readers=list(metric_readers), views=views(),
                             shutdown_on_exit=False)
    metric_locks_after_fork.renew_after_fork(provider)
    return provider
