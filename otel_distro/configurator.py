"""Builds the three providers from Settings: for ``opentelemetry-instrument`` and for code.

``configure()`` is idempotent: the second call is a no-op (one debug line),
never a second set of processors. Telemetry trouble is reported once and
swallowed; only ``OTEL_DISTRO_STRICT=true`` may stop the start-up.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import _logs, metrics, trace
from opentelemetry.sdk._configuration import _BaseConfigurator
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_distro import ai, diagnostics, logs, resource, settings, traces
from otel_distro import metrics as metrics_
from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import metric_locks_after_fork, provider_resource
from otel_distro.metrics import PullEndpoint

_log = logging.getLogger("otel_distro")


@dataclass
class Telemetry:
    """What ``configure()`` built and installed as the global providers."""

    settings: settings.Settings
    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    pull_endpoint: PullEndpoint | None


_lock = threading.RLock()
_configured = False
_telemetry: Telemetry | None = None


def current() -> Telemetry | None:
    """The running telemetry, or None (not configured, disabled, or failed)."""
    return _telemetry


def configure(*, service_name: str | None = None,
              traces_exporter: str | Sequence[str] | None = None,
              metrics_exporter: str | Sequence[str] | None = None,
              logs_exporter: str | Sequence[str] | None = None,
              otlp_endpoint: str | None = None,
              sampler: str | None = None,
              sampler_arg: float | None = None,
              resource_attributes: Mapping[str, str] | None = None,
              **overrides: Any) -> Telemetry | None:
    """Set up traces, metrics and logs from the environment; keyword arguments override it.

    Each argument is read and checked as its environment variable would be (``metrics_exporter="prometheus"``
    as ``OTEL_METRICS_EXPORTER=prometheus``; a list for several); an invalid one is reported on one line naming
    it and ignored (OTEL_DISTRO_STRICT=true: exit 2). Other keyword names are the fields of
    :class:`otel_distro.settings.Settings`; an argument left ``None`` keeps the environment's value.
    ``config_file="otel.yaml"`` builds the providers from that declarative configuration file exactly as
    ``OTEL_CONFIG_FILE`` would (the other arguments still win over it).
    """
    named = {"service_name": service_name, "traces_exporter": traces_exporter,
             "metrics_exporter": metrics_exporter, "logs_exporter": logs_exporter, "otlp_endpoint": otlp_endpoint,
             "sampler": sampler, "sampler_arg": sampler_arg, "resource_attributes": resource_attributes}
    overrides.update({name: value for name, value in named.items() if value is not None})
    global _configured, _telemetry
    with _lock:
        if _configured:
            _log.debug("otel-distro: configure() called again; keeping the first configuration")
            return _telemetry
        chosen = settings.load(config_file=_file_argument(overrides))
        if overrides:
            chosen = chosen.with_overrides(**overrides)
        _configured = True
        if chosen.sdk_disabled:
            _log.debug("otel-distro: OTEL_SDK_DISABLED=true; no telemetry")
            return None
        try:
            _telemetry = _build(chosen)
        except Exception as err:  # the host application must start anyway
            report_internal_error("configure", "telemetry setup failed, the service runs without it", err)
            return None
        return _telemetry


def _file_argument(overrides: dict[str, Any]) -> str | None:
    """``configure(config_file=...)``: read as OTEL_CONFIG_FILE would be, before the other arguments."""
    path = overrides.pop("config_file", None)
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"otel_distro.configure(config_file=...) takes a path, not {type(path).__name__}")
    return None if path is None else os.fspath(path)


@dataclass
class _Providers:
    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider
    pull_endpoint: PullEndpoint | None
    exports_logs: bool
    reads_metrics: bool


def _from_environment(chosen: settings.Settings) -> _Providers:
    res = resource.build(chosen)
    tracer_provider = traces.build(chosen, res)
    readers, endpoint = metrics_.readers(chosen)
    meter_provider = metrics_.build(chosen, res, readers)
    logger_provider = logs.build(chosen, res)
    return _Providers(res, tracer_provider, meter_provider, logger_provider, endpoint,
                      bool(chosen.logs_exporter), bool(readers))


def _from_file(chosen: settings.Settings) -> _Providers:
    from otel_distro import config_file

    built = config_file.build(chosen)
    metric_locks_after_fork.renew_after_fork(built.meter_provider)
    return _Providers(*built, pull_endpoint=None, exports_logs=config_file.exports_logs(chosen.declarative),
                      reads_metrics=config_file.reads_metrics(chosen.declarative))


def _providers(chosen: settings.Settings) -> tuple[settings.Settings, _Providers]:
    """The file's providers when OTEL_CONFIG_FILE is in use and can be built, else the environment's."""
    if chosen.declarative is not None:
        from otel_distro import config_file  # only with OTEL_CONFIG_FILE: not a start-up cost otherwise

        try:
            return chosen, _from_file(chosen)
        except config_file.ConfigFileError as err:
            sys.stderr.write(f"otel-distro: OTEL_CONFIG_FILE: {chosen.config_file} is not a valid configuration "
                             f"file: {err}; using the environment's settings\n")
            sys.stderr.flush()
            if chosen.strict:
                raise settings.StrictModeError(2) from None
            chosen = _settings_without_file(chosen)
    return chosen, _from_environment(chosen)


def _settings_without_file(chosen: settings.Settings) -> settings.Settings:
    """The environment's settings, with configure()'s arguments (parsed already) kept."""
    fallback = settings.load(report=False, use_file=False)
    kept = {name: source for name, source in chosen.sources.items() if source.startswith("configure()")}
    return dataclasses.replace(fallback, **{name: getattr(chosen, name) for name in kept},
                               sources={**fallback.sources, **kept})


def _build(chosen: settings.Settings) -> Telemetry:
    from otel_distro import console, redaction

    diagnostics.show_diagnostics(None, redaction.from_settings(chosen))  # plain lines until the console is known
    chosen, built = _providers(chosen)
    redactor = redaction.from_settings(chosen)
    res, tracer_provider = built.resource, built.tracer_provider
    meter_provider, logger_provider = built.meter_provider, built.logger_provider
    live_sampler = None
    if chosen.opamp_endpoint:  # the sampling ratio may change while the service runs
        from otel_distro import live

        live_sampler = live.prepare(tracer_provider)

    ai.install(chosen, tracer_provider, meter_provider)  # wraps the sampler: before any tracer
    from otel_distro.integrations.db_metrics import DatabaseOperationDuration

    tracer_provider.add_span_processor(DatabaseOperationDuration(meter_provider))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    _logs.set_logger_provider(logger_provider)
    if chosen.business_metrics_file or "otel_distro.business" in sys.modules:
        # Otherwise the module takes the bound from current() when the application imports it.
        from otel_distro import business

        business.install(chosen.metric_attribute_value_limit, chosen.business_metrics_file)

    writer = console.from_settings(chosen, str(res.attributes.get("service.name", chosen.program_name)), redactor)
    diagnostics.show_diagnostics(writer, redactor)
    if built.exports_logs or chosen.log_format != "off":
        losses = logs.Losses(chosen.export_error_interval_s)
        losses.observe(meter_provider)
        logs.install_bridge(logger_provider, chosen.log_export_level, export=built.exports_logs,
                            console=writer, losses=losses)
    if chosen.system_metrics and built.reads_metrics:
        from otel_distro import process_metrics

        process_metrics.start(meter_provider)
    provider_resource.refresh_process_after_fork([tracer_provider, meter_provider, logger_provider])
    diagnostics.rate_limit_export_errors(chosen.export_error_interval_s)
    atexit.register(shutdown)
    _exit_cleanly_on_sigterm()
    telemetry = Telemetry(chosen, res, tracer_provider, meter_provider, logger_provider, built.pull_endpoint)
    if live_sampler is not None:
        from otel_distro import remote

        remote.start(telemetry, live_sampler)
    return telemetry


def _exit_cleanly_on_sigterm() -> None:
    # A plain Python process dies on SIGTERM without running atexit, losing what
    # is still queued. Turn it into SystemExit so atexit flushes. Servers that
    # install their own handler (uvicorn, gunicorn, celery) replace this one and
    # exit through atexit anyway.
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _raise_system_exit)
    except (ValueError, OSError):
        pass


def _raise_system_exit(signum: int, _frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    sys.exit(128 + signum)


def _flush_and_close(telemetry: Telemetry, timeout_ms: int) -> None:
    # Not the meter provider: its shutdown below makes each periodic reader collect and
    # export one last time; flushing it first would send every metric twice.
    for provider in (telemetry.tracer_provider, telemetry.logger_provider):
        try:
            provider.force_flush(timeout_ms)
        except Exception as err:
            report_internal_error("shutdown.flush", "flushing telemetry at shutdown failed", err)
    for provider in (telemetry.tracer_provider, telemetry.logger_provider,
                     telemetry.meter_provider):
        try:
            if provider is telemetry.meter_provider:
                provider.shutdown(timeout_millis=timeout_ms)
            else:
                provider.shutdown()
        except Exception as err:
            report_internal_error("shutdown", "shutting a telemetry provider down failed", err)
    if telemetry.pull_endpoint is not None:
        telemetry.pull_endpoint.close()


# How long exit waits when no Collector endpoint accepts a connection: nothing could be delivered.
UNREACHABLE_EXIT_WAIT_S = 0.5
_PROBE_TIMEOUT_S = 0.3


def _otlp_endpoints(chosen: settings.Settings) -> set[tuple[str, int]]:
    """The (host, port) pairs the OTLP exporters send to."""
    found = set()
    for kind in ("traces", "metrics", "logs"):
        if "otlp" in getattr(chosen, f"{kind}_exporter"):
            url = urlsplit(chosen.signal_endpoint(kind))
            if url.hostname:
                found.add((url.hostname, url.port or (443 if url.scheme == "https" else 80)))
    return found


def _nothing_deliverable(chosen: settings.Settings) -> bool:
    """True when the only destinations are OTLP endpoints and none of them accepts a connection."""
    endpoints = _otlp_endpoints(chosen)
    others = [name for signal in ("traces", "metrics", "logs")
              for name in getattr(chosen, f"{signal}_exporter") if name not in ("otlp", "none")]
    if not endpoints or others:
        return False
    for address in endpoints:
        try:
            with socket.create_connection(address, timeout=_PROBE_TIMEOUT_S):
                return False
        except OSError:
            continue
    return True


def shutdown() -> None:
    """Flush pending spans, metrics and logs, then stop exporting; bounded by the shutdown timeout."""
    global _telemetry
    with _lock:
        telemetry, _telemetry = _telemetry, None
    if telemetry is None:
        return
    if telemetry.settings.opamp_endpoint:
        from otel_distro import remote

        remote.stop()
    bridge = logs.bridge()
    logs.remove_bridge()
    ai.uninstall()
    timeout = telemetry.settings.shutdown_timeout_s
    unreachable = _nothing_deliverable(telemetry.settings)
    if unreachable:
        timeout = min(timeout, UNREACHABLE_EXIT_WAIT_S)
    worker = threading.Thread(target=_flush_and_close, args=(telemetry, int(timeout * 1000)),
                              name="otel-distro-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() and unreachable:
        _log.warning("otel-distro: no OTLP endpoint accepts connections at exit; queued telemetry dropped "
                     "after %ss", timeout)
    elif worker.is_alive():
        _log.warning("otel-distro: telemetry not fully flushed within %ss "
                     "(OTEL_DISTRO_SHUTDOWN_TIMEOUT)", timeout)
    if bridge is not None:
        logs.report_at_exit(bridge.losses, telemetry.logger_provider)


class OtelConfigurator(_BaseConfigurator):
    """The ``opentelemetry_configurator`` entry point named ``otel_distro``."""

    def _configure(self, **kwargs: Any) -> None:
        if settings.hook_inherited_unconfigured():
            _log.debug("otel-distro: hook inherited without OTEL_* configuration; no telemetry here")
            return
        settings.claim_hook()
        try:
            configure()
        except settings.StrictModeError as stop:
            # Raised while Python imports sitecustomize, SystemExit would become
            # "Fatal Python error" with status 1: leave with the promised status.
            sys.stderr.flush()
            os._exit(int(stop.code or 2))
