"""The meter provider: OTLP push, an optional Prometheus pull endpoint, seconds-shaped buckets."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
from otel_distro._internal_errors import report_internal_error
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
    return list(_OWN_VIEWS)


_OWN_VIEWS: list[View] = [
        View(instrument_type=Histogram, instrument_unit="s", aggregation=SecondsBucketAggregation()),
        # The contrib Celery instrumentor's runtime histogram (unit "seconds", so
        # millisecond-shaped buckets) duplicates celery.task.duration.
        View(instrument_name="flower.task.runtime.seconds", aggregation=DropAggregation()),
]


class _SameNameInOtherScopes(logging.Filter):
    """Drops the SDK's "conflicting metrics identities" warning when one of our views matched two instruments.

    None of our views renames, so the two instruments share a name given by their libraries: requests and
    httpx each create ``http.client.request.duration`` under their own instrumentation scope, which keeps the
    two streams apart (the SDK's check compares names, not scopes). A conflict between other views, the
    application's, still warns.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) == 2 and args[0] is args[1] and _is_own(args[0]))


def _is_own(view: Any) -> bool:
    """One of the distro's views, or its copy in a provider built from the configuration file."""
    original = getattr(view, "own", view)
    return any(original is own for own in _OWN_VIEWS)


_SAME_NAME_IN_OTHER_SCOPES = _SameNameInOtherScopes()


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
    """A running Prometheus scrape endpoint: the public one, or a worker's loopback one its parent scrapes."""

    host: str
    port: int
    server: Any
    workers_dir: Path | None = None  # where this process's workers register (the public endpoint's owner)
    registration: Path | None = None  # this worker's entry in its parent's directory
    pid: int = field(default_factory=os.getpid)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        _stop_following(self)
        if self.pid == os.getpid():  # an inherited server's serving thread lives in the parent
            self.server.shutdown()
        self.server.server_close()
        if self.registration is not None:
            self.registration.unlink(missing_ok=True)
        if self.workers_dir is not None:
            from otel_distro import prometheus_workers

            prometheus_workers.remove_directory(self.workers_dir)


def prometheus_reader(settings: Settings) -> tuple[MetricReader, PullEndpoint | None]:
    """A Prometheus reader and its HTTP endpoint; a taken port gives a warning, not a crash.

    In a worker of a multi-process server the endpoint is a loopback one the parent's public endpoint
    scrapes (:mod:`otel_distro.prometheus_workers`).
    """
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from prometheus_client import CollectorRegistry

    # Own registry: prometheus_client's default one adds its own process metrics,
    # which would duplicate ours under other names.
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    parents_dir = Path(settings.prometheus_workers_dir) if settings.prometheus_workers_dir else None
    if parents_dir is not None and parents_dir.is_dir():  # a spawned worker (uvicorn --workers)
        endpoint = _serve_for_parent(registry, parents_dir)
    else:
        endpoint = _serve_public(settings, registry)
    if endpoint is not None:
        _follow_forks(endpoint, registry)
    return reader, endpoint


def _serve_public(settings: Settings, registry: Any) -> PullEndpoint | None:
    from prometheus_client import start_http_server

    from otel_distro import prometheus_workers  # only with a Prometheus endpoint: not a start-up cost otherwise

    workers_dir = prometheus_workers.create_directory()
    served = prometheus_workers.served_registry(registry, workers_dir) if workers_dir is not None else registry
    try:
        server, _thread = start_http_server(settings.prometheus_port, addr=settings.prometheus_host,
                                            registry=served)
    except OSError as err:
        if workers_dir is not None:
            prometheus_workers.remove_directory(workers_dir)
        _log.warning("otel-distro: Prometheus endpoint %s:%s not started (%s); metrics still go "
                     "to the other exporters", settings.prometheus_host, settings.prometheus_port,
                     err.strerror or err)
        return None
    host, port = server.server_address[:2]
    if not _loopback(settings.prometheus_host):
        _log.warning("otel-distro: the Prometheus endpoint listens on %s:%s, open to every network this host "
                     "is on; its target_info shows the host name, user and command line "
                     "(OTEL_EXPORTER_PROMETHEUS_HOST=127.0.0.1 keeps it local)", settings.prometheus_host, port)
    return PullEndpoint(host=host, port=port, server=server, workers_dir=workers_dir)


def _serve_for_parent(registry: Any, parents_dir: Path) -> PullEndpoint | None:
    from prometheus_client import start_http_server

    from otel_distro import prometheus_workers

    try:
        server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        port = server.server_address[1]
        return PullEndpoint(host="127.0.0.1", port=port, server=server,
                            registration=prometheus_workers.register(parents_dir, port))
    except OSError as err:
        report_internal_error("prometheus.worker", "this worker's metrics are missing from the Prometheus "
                              "endpoint: its loopback endpoint did not start", err)
        return None


_followed: tuple[PullEndpoint, Any] | None = None
_fork_hook_installed = False


def _follow_forks(endpoint: PullEndpoint, registry: Any) -> None:
    global _followed, _fork_hook_installed
    _followed = (endpoint, registry)
    if not _fork_hook_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_serve_forked_worker)
        _fork_hook_installed = True


def _stop_following(endpoint: PullEndpoint) -> None:
    """A closed endpoint has no workers: a later fork (a test's, a subprocess helper's) serves nothing."""
    global _followed
    if _followed is not None and _followed[0] is endpoint:
        _followed = None


def _serve_forked_worker() -> None:
    """A forked worker (gunicorn's) inherits the endpoint but not its serving thread, which stayed in the
    parent: it closes its copy of the socket and serves its own metrics to the parent instead."""
    if _followed is None:
        return
    endpoint, registry = _followed
    directory = endpoint.workers_dir or (endpoint.registration.parent if endpoint.registration else None)
    endpoint.server.socket.close()
    endpoint.workers_dir = endpoint.registration = None  # the parent's, not this process's to remove
    own = _serve_for_parent(registry, directory) if directory is not None else None
    if own is not None:
        endpoint.host, endpoint.port, endpoint.server = own.host, own.port, own.server
        endpoint.registration, endpoint.pid = own.registration, own.pid


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


def quiet_same_name_in_other_scopes() -> None:
    """Install :class:`_SameNameInOtherScopes` (addFilter ignores a filter already there)."""
    logging.getLogger("opentelemetry.sdk.metrics._internal.metric_reader_storage").addFilter(
        _SAME_NAME_IN_OTHER_SCOPES)


def build(settings: Settings, resource: Resource,
          metric_readers: Sequence[MetricReader]) -> MeterProvider:
    quiet_same_name_in_other_scopes()
    provider = MeterProvider(resource=resource, metric_readers=list(metric_readers), views=views(),
                             shutdown_on_exit=False)
    metric_locks_after_fork.renew_after_fork(provider)
    return provider
