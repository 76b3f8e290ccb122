"""Builds the three providers from Settings: for ``opentelemetry-instrument`` and for code.

``configure()`` is idempotent: the second call is a no-op (one debug line),
never a second set of processors. Telemetry trouble is reported once and
swallowed; only ``OTEL_DISTRO_STRICT=true`` may stop the start-up.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import sys
import threading
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


def configure(**overrides: Any) -> Telemetry | None:
    """Set up traces, metrics and logs from the environment; keyword arguments override it.

    Keyword names are the fields of :class:`otel_distro.settings.Settings`
    (``service_name="shop"``, ``metrics_exporter=("prometheus",)`` ...).
    """
    global _configured, _telemetry
    with _lock:
        if _configured:
            _log.debug("otel-distro: configure() called again; keeping the first configuration")
            return _telemetry
        chosen = settings.load()
        if overrides:
            chosen = chosen.with_overrides(**overrides)
        _configured = True
        if chosen.sdk_disabled:
            _log.debug("otel-distro: OTEL_SDK_DISABLED=true; no telemetry")
            return None
        try:
            _telemetry = _build(chosen)
        except Exception as err:  # the host application must start anyway
            _log.warning("otel-distro: telemetry setup failed, the service runs without it: %s: %s",
                         type(err).__name__, err)
            return None
        return _telemetry


def _build(chosen: settings.Settings) -> Telemetry:
    res = resource.build(chosen)
    tracer_provider = traces.build(chosen, res)
    readers, endpoint = metrics_.readers(chosen)
    meter_provider = metrics_.build(chosen, res, readers)
    logger_provider = logs.build(chosen, res)

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

    if chosen.logs_exporter or chosen.log_format != "off":
        from otel_distro import console, redaction

        name = str(res.attributes.get("service.name", chosen.program_name))
        logs.install_bridge(logger_provider, chosen.log_export_level, export=bool(chosen.logs_exporter),
                            console=console.from_settings(chosen, name, redaction.from_settings(chosen)))
    if chosen.system_metrics and readers:
        from otel_distro import process_metrics

        process_metrics.start(meter_provider)
    resource.refresh_process_after_fork([tracer_provider, meter_provider, logger_provider])
    diagnostics.rate_limit_export_errors(chosen.export_error_interval_s)
    atexit.register(shutdown)
    _exit_cleanly_on_sigterm()
    return Telemetry(chosen, res, tracer_provider, meter_provider, logger_provider, endpoint)


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
            _log.warning("otel-distro: flush failed: %s", err)
    for provider in (telemetry.tracer_provider, telemetry.logger_provider,
                     telemetry.meter_provider):
        try:
            if provider is telemetry.meter_provider:
                provider.shutdown(timeout_millis=timeout_ms)
            else:
                provider.shutdown()
        except Exception as err:
            _log.warning("otel-distro: shutdown failed: %s", err)
    if telemetry.pull_endpoint is not None:
        telemetry.pull_endpoint.close()


# How long exit waits when no Collector endpoint accepts a connection: nothing could be delivered.
UNREACHABLE_EXIT_WAIT_S = 0.5
_PROBE_TIMEOUT_S = 0.3


def _otlp_endpoints(chosen: settings.Settings) -> set[tuple[str, int]]:
    """The (host, port) pairs the OTLP exporters send to."""
    found = set()
    for signal in ("traces", "metrics", "logs"):
        if "otlp" in getattr(chosen, f"{signal}_exporter"):
            url = urlsplit(chosen.signal_endpoint(signal))
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
