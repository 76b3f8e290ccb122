"""Celery: task metrics by name and outcome, and telemetry that survives the prefork pool.

The contrib instrumentor (``opentelemetry-instrumentation-celery``) makes the
spans: ``apply_async/<task>`` (producer) and ``run/<task>`` (consumer), in one
trace through the message headers. :func:`instrument` adds, with Celery signals:

- ``celery.task.duration`` (histogram, ``s``, the semconv seconds buckets) and
  ``celery.task.runs`` (counter, ``{run}``), both with ``celery.task.name`` and
  ``celery.task.outcome`` (``success``, ``failure`` or ``retry``);
- a bounded flush of the global providers when a prefork pool child exits:
  billiard ends its children with ``os._exit``, so atexit never runs there and
  whatever the batch processors still hold would be lost (with
  ``--max-tasks-per-child=1``, everything the child did);
- the logs bridge put back where the worker removed it: Celery empties the
  root logger's handlers (``worker_hijack_root_logger``) and its task logger
  does not propagate to the root.

After a fork the SDK (>= 1.44) restarts its batch and metric-reader threads and
gives each provider a fresh ``service.instance.id``; the distro adds the new
``process.pid``. Nothing else has to be redone in a pool child.

Handlers never raise into the worker: a failure is logged once per handler.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from opentelemetry import metrics

from otel_distro._internal_errors import report_internal_error
from otel_distro.metrics import SECONDS_BUCKETS
from otel_distro.version import __version__

_log = logging.getLogger("otel_distro")

TASK_NAME = "celery.task.name"
TASK_OUTCOME = "celery.task.outcome"
DURATION = "celery.task.duration"
RUNS = "celery.task.runs"

# Celery's final states to our three outcomes. IGNORED means the task itself
# chose to end without a result (Ignore, or a duplicate of a successful task);
# anything else unexpected (REJECTED ...) counts as a failure.
_OUTCOMES = {"SUCCESS": "success", "IGNORED": "success", "RETRY": "retry"}

# Used when the distro is not configured (code that calls instrument() alone).
_DEFAULT_FLUSH_TIMEOUT_S = 5.0
_START_ATTR = "_otel_distro_started"

_lock = threading.Lock()
_instrumented = False
_connected: list[tuple[Any, Callable[..., None], str]] = []
_duration: Any = None
_runs: Any = None
_flushed_pids: set[int] = set()


def _guarded(name: str, handler: Callable[..., None]) -> Callable[..., None]:
    """The handler, made unable to raise in production; its first failure is reported, later ones counted."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            handler(*args, **kwargs)
        except Exception as err:  # telemetry must never break a task or the worker
            report_internal_error(f"celery.{name}", f"the Celery {name} handler failed", err)

    run.__name__ = f"otel_distro_celery_{name}"
    return run


def outcome(state: str | None) -> str:
    """``success``, ``failure`` or ``retry`` for the state Celery gives ``task_postrun``."""
    return _OUTCOMES.get(state or "", "failure")


def _task_name(task: Any, sender: Any) -> str:
    name = getattr(task, "name", None) or getattr(sender, "name", None)
    return str(name) if name else "unknown"


def _on_prerun(sender: Any = None, task_id: str | None = None, task: Any = None,
               **_: Any) -> None:
    # The start time goes on the task's request context: it is pushed before prerun and
    # popped after postrun, one per execution (also for an eager retry nested in its
    # own first run), and gone with it if the child is killed mid-task.
    request = getattr(task or sender, "request", None)
    if request is not None:
        setattr(request, _START_ATTR, time.perf_counter())


def _on_postrun(sender: Any = None, task_id: str | None = None, task: Any = None,
                state: str | None = None, **_: Any) -> None:
    request = getattr(task or sender, "request", None)
    started = getattr(request, _START_ATTR, None) if request is not None else None
    if started is None:  # no prerun seen for this execution: no pair to measure
        return
    delattr(request, _START_ATTR)
    attributes = {TASK_NAME: _task_name(task, sender), TASK_OUTCOME: outcome(state)}
    _duration.record(max(time.perf_counter() - started, 0.0), attributes)
    _runs.add(1, attributes)


def _global_providers() -> list[Any]:
    from opentelemetry import _logs, trace

    providers: list[Any] = []
    # Spans and logs first: the metrics flush then also carries the run just counted.
    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider(),
                     metrics.get_meter_provider()):
        if hasattr(provider, "force_flush") and all(provider is not p for p in providers):
            providers.append(provider)
    return providers


def _flush_timeout_s() -> float:
    from otel_distro import configurator

    telemetry = configurator.current()
    return telemetry.settings.shutdown_timeout_s if telemetry else _DEFAULT_FLUSH_TIMEOUT_S


def flush(timeout_s: float | None = None) -> bool:
    """Flush the global providers, bounded by ``timeout_s``; True if it finished in time."""
    timeout = _flush_timeout_s() if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout

    def work() -> None:
        for provider in _global_providers():
            left_ms = max(int((deadline - time.monotonic()) * 1000), 1)
            try:
                provider.force_flush(left_ms)
            except Exception as err:
                report_internal_error("celery.flush", "flushing a Celery child's telemetry failed", err)

    # An unreachable Collector must not keep the child from exiting: the flush
    # runs in a daemon thread that is abandoned when the time is up.
    worker = threading.Thread(target=work, name="otel-distro-celery-flush", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        _log.warning("otel-distro: pool process %s: telemetry not fully flushed within %ss "
                     "(OTEL_DISTRO_SHUTDOWN_TIMEOUT)", os.getpid(), timeout)
        return False
    return True


def _on_process_shutdown(**_: Any) -> None:
    # Sent in the pool child just before os._exit (billiard may send it twice on an error).
    pid = os.getpid()
    if pid in _flushed_pids:
        return
    _flushed_pids.add(pid)
    flush()


def _bridge() -> logging.Handler | None:
    from otel_distro import logs

    return logs.bridge()


def _on_after_setup_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    # Sent after Celery has replaced the root handlers with its own.
    handler = _bridge()
    root = logging.getLogger()
    if handler is not None and handler not in root.handlers:
        root.addHandler(handler)


def _on_after_setup_task_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    # Celery's task logger ("celery.task") stops propagation: give it the bridge itself.
    handler = _bridge()
    if handler is None or logger is None or logger.propagate:
        return
    if handler not in logger.handlers:
        logger.addHandler(handler)


def instrument(meter_provider: Any = None) -> None:
    """Add task metrics, pool-child flushing and the logs bridge to Celery; a second call is a no-op."""
    global _instrumented, _duration, _runs
    with _lock:
        if _instrumented:
            return
        try:
            from celery import signals
        except ImportError:
            _log.debug("otel-distro: celery is not installed; nothing to instrument")
            return
        try:
            meter = metrics.get_meter("otel_distro.celery", __version__, meter_provider)
            _duration = meter.create_histogram(
                DURATION, unit="s", description="Time a Celery task took to run, in the worker.",
                explicit_bucket_boundaries_advisory=list(SECONDS_BUCKETS))
            _runs = meter.create_counter(
                RUNS, unit="{run}", description="Celery task runs, by task name and outcome.")
            for signal, handler, name in (
                    (signals.task_prerun, _on_prerun, "task_prerun"),
                    (signals.task_postrun, _on_postrun, "task_postrun"),
                    (signals.worker_process_shutdown, _on_process_shutdown,
                     "worker_process_shutdown"),
                    (signals.after_setup_logger, _on_after_setup_logger, "after_setup_logger"),
                    (signals.after_setup_task_logger, _on_after_setup_task_logger,
                     "after_setup_task_logger")):
                uid = f"otel_distro.celery.{name}"
                signal.connect(_guarded(name, handler), weak=False, dispatch_uid=uid)
                _connected.append((signal, handler, uid))
        except Exception as err:  # the worker must start anyway
            report_internal_error("celery.setup", "the Celery task metrics were not set up", err)
            _disconnect()
            return
        _instrumented = True


def _disconnect() -> None:
    while _connected:
        signal, _handler, uid = _connected.pop()
        try:
            signal.disconnect(dispatch_uid=uid)
        except Exception as err:
            report_internal_error("celery.disconnect", "a Celery signal handler could not be disconnected", err)


def uninstrument() -> None:
    """Disconnect every handler :func:`instrument` connected."""
    global _instrumented
    with _lock:
        _disconnect()
        _instrumented = False
