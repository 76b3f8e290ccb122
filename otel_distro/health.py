"""Health checks: registered in code, served as ASGI routes, reported as metrics.

    from otel_distro import health

    @health.check("database", timeout=1.0, critical=True, ttl=5.0)
    async def database() -> bool:
        return await db.ping()

    health.install(app)          # GET /health (liveness), GET /health/ready (the checks)

``install`` takes a FastAPI/Starlette app or a Flask app; ``endpoints()`` gives
the two routes as ASGI apps for any ASGI router, ``wsgi_endpoints()`` as WSGI
apps for any WSGI one.

A check passes when it returns a truthy value (or ``(True, "message")``); it
fails when it returns a falsy value, raises, or runs past its timeout. A
failing critical check makes ``/health/ready`` answer 503; a failing
non-critical one leaves it at 200 with status ``warn``. Results are cached for
the check's TTL so a busy probe does not hammer the dependency. Each run sets
the gauge ``health.check.status`` (1 healthy, 0 not) and records
``health.check.duration`` (s), both by ``health.check.name``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics

from otel_distro._internal_errors import report_internal_error

CheckFunction = Callable[[], Any] | Callable[[], Awaitable[Any]]

STATUS_METRIC = "health.check.status"
DURATION_METRIC = "health.check.duration"
_NAME = "health.check.name"


@dataclass(frozen=True)
class CheckResult:
    name: str
    healthy: bool
    critical: bool
    duration_s: float
    message: str
    checked_at: float

    def as_dict(self) -> dict[str, Any]:
        return {"status": "pass" if self.healthy else "fail", "critical": self.critical,
                "duration_ms": round(self.duration_s * 1000, 3), "message": self.message}


@dataclass
class _Check:
    name: str
    function: CheckFunction
    timeout: float
    critical: bool
    ttl: float
    last: CheckResult | None = None


def _outcome(value: Any) -> tuple[bool, str]:
    if isinstance(value, tuple) and len(value) == 2:
        return bool(value[0]), str(value[1])
    return bool(value), "ok" if value else "check returned a false value"


@dataclass
class HealthRegistry:
    """Named checks and their cached results."""

    checks: dict[str, _Check] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _instruments: tuple[Any, Any] | None = None

    def add(self, name: str, function: CheckFunction, *, timeout: float = 2.0,
            critical: bool = True, ttl: float = 0.0) -> None:
        if timeout <= 0 or ttl < 0:
            raise ValueError("health check timeout must be > 0 and ttl >= 0")
        with self._lock:
            self.checks[name] = _Check(name, function, timeout, critical, ttl)

    def remove(self, name: str) -> None:
        with self._lock:
            self.checks.pop(name, None)

    def _meters(self) -> tuple[Any, Any]:
        if self._instruments is None:
            meter = metrics.get_meter("otel_distro.health")
            self._instruments = (
                # No unit: with "1" the Collector's Prometheus exporter would add
                # "_ratio" and the name would differ from the pull endpoint's.
                meter.create_gauge(STATUS_METRIC, unit="",
                                   description="1 when the health check passes, 0 when it fails"),
                meter.create_histogram(DURATION_METRIC, unit="s",
                                       description="Time one health check took"),
            )
        return self._instruments

    async def _run_one(self, check: _Check) -> CheckResult:
        now = time.monotonic()
        if check.last is not None and now - check.last.checked_at < check.ttl:
            return check.last
        started = time.perf_counter()
        try:
            if inspect.iscoroutinefunction(check.function):
                value = await asyncio.wait_for(check.function(), check.timeout)
            else:
                # A hanging sync check keeps its worker thread, but never the route.
                value = await asyncio.wait_for(asyncio.to_thread(check.function), check.timeout)
            healthy, message = _outcome(value)
        except TimeoutError:
            healthy, message = False, f"timed out after {check.timeout:g}s"
        except Exception as err:
            healthy, message = False, f"{type(err).__name__}: {err}"
        duration = time.perf_counter() - started
        result = CheckResult(check.name, healthy, check.critical, duration, _redacted(message),
                             time.monotonic())
        check.last = result
        try:
            status, durations = self._meters()
            status.set(1 if healthy else 0, {_NAME: check.name})
            durations.record(duration, {_NAME: check.name})
        except Exception as err:  # metrics must never fail a health route
            report_internal_error("health.metrics", "recording a health check's metrics failed", err)
        return result

    async def run(self) -> list[CheckResult]:
        with self._lock:
            checks = list(self.checks.values())
        return list(await asyncio.gather(*(self._run_one(c) for c in checks)))

    async def readiness(self) -> tuple[int, dict[str, Any]]:
        results = await self.run()
        critical_failed = any(not r.healthy and r.critical for r in results)
        any_failed = any(not r.healthy for r in results)
        status = "fail" if critical_failed else "warn" if any_failed else "pass"
        body = {"status": status, "checks": {r.name: r.as_dict() for r in results}}
        return (503 if critical_failed else 200), body


registry = HealthRegistry()


def _redacted(message: str) -> str:
    """A check's message as the routes show it: an error's text may quote a DSN with its password."""
    from otel_distro import configurator, redaction

    running = configurator.current()
    rules = redaction.from_settings(running.settings) if running is not None else redaction.Redactor.default()
    return rules.text(message) if rules is not None else message


def check(name: str | None = None, *, timeout: float = 2.0, critical: bool = True,
          ttl: float = 0.0) -> Callable[[CheckFunction], CheckFunction]:
    """Decorator registering a sync or async check on the default registry."""

    def register(function: CheckFunction) -> CheckFunction:
        registry.add(name or function.__name__, function, timeout=timeout, critical=critical,
                     ttl=ttl)
        return function

    return register


async def _send_json(send: Callable[..., Awaitable[None]], status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(name.encode(), value.encode()) for name, value in _json_headers(payload).items()]})
    await send({"type": "http.response.body", "body": payload})


class _Endpoint:
    """A plain ASGI app (a class, so routers do not wrap it as a request handler)."""

    def __init__(self, respond: Callable[[], Awaitable[tuple[int, Any]]]) -> None:
        self._respond = respond

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        status, body = await self._respond()
        await _send_json(send, status, body)


def endpoints(health_registry: HealthRegistry | None = None) -> tuple[_Endpoint, _Endpoint]:
    """Two ASGI apps, liveness and readiness, for any ASGI router."""
    chosen = health_registry or registry

    async def live() -> tuple[int, Any]:
        return 200, {"status": "pass"}

    return _Endpoint(live), _Endpoint(chosen.readiness)


def wsgi_endpoints(health_registry: HealthRegistry | None = None) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Two WSGI apps, liveness and readiness, for any WSGI router."""
    chosen = health_registry or registry

    def live(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        return _wsgi_json(start_response, 200, {"status": "pass"})

    def ready(environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        return _wsgi_json(start_response, *_readiness_from_thread(chosen))

    return live, ready


def _wsgi_json(start_response: Callable[..., Any], status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body).encode()
    reason = "OK" if status == 200 else "Service Unavailable"
    start_response(f"{status} {reason}", list(_json_headers(payload)))
    return [payload]


def _json_headers(payload: bytes) -> dict[str, str]:
    return {"content-type": "application/json", "content-length": str(len(payload)),
            "cache-control": "no-store"}


class _CheckLoop:
    """One event loop in a daemon thread that runs the checks for synchronous (WSGI) routes.

    A loop per request (``asyncio.run``) would wait at its close for a hanging sync
    check's worker thread: the route would hang with the check instead of being cut
    at the check's timeout.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:  # a forked worker inherits the loop but not its thread: start a new one
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever,
                                                name="otel-distro-health", daemon=True)
                self._thread.start()
            return self._loop

    def run(self, coroutine: Awaitable[Any]) -> Any:
        future: concurrent.futures.Future = asyncio.run_coroutine_threadsafe(coroutine, self._running())
        return future.result()


_check_loop = _CheckLoop()


def _readiness_from_thread(chosen: HealthRegistry) -> tuple[int, dict[str, Any]]:
    return _check_loop.run(chosen.readiness())


def install(app: Any, prefix: str = "/health",
            health_registry: HealthRegistry | None = None) -> None:
    """Add ``{prefix}`` and ``{prefix}/ready`` to a FastAPI, Starlette or Flask app."""
    if hasattr(getattr(app, "router", None), "routes"):
        _install_asgi(app, prefix, health_registry)
    elif callable(getattr(app, "add_url_rule", None)):
        _install_flask(app, prefix, health_registry or registry)
    else:
        raise TypeError(f"health.install() takes a FastAPI, Starlette or Flask app, not "
                        f"{type(app).__name__}; mount health.endpoints() (ASGI) or "
                        f"health.wsgi_endpoints() (WSGI) in other routers")


def _install_asgi(app: Any, prefix: str, health_registry: HealthRegistry | None) -> None:
    from starlette.routing import Route

    live, ready = endpoints(health_registry)
    app.router.routes.append(Route(prefix, live, methods=["GET", "HEAD"], include_in_schema=False))
    app.router.routes.append(Route(prefix + "/ready", ready, methods=["GET", "HEAD"],
                                   include_in_schema=False))


def _install_flask(app: Any, prefix: str, chosen: HealthRegistry) -> None:
    def live() -> tuple[bytes, int, dict[str, str]]:
        return _flask_json(200, {"status": "pass"})

    def ready() -> tuple[bytes, int, dict[str, str]]:
        return _flask_json(*_readiness_from_thread(chosen))

    # Flask answers HEAD for every GET rule; endpoint names carry the prefix so two installs do not clash.
    app.add_url_rule(prefix, endpoint=f"otel_distro_health:{prefix}", view_func=live, methods=["GET"])
    app.add_url_rule(prefix + "/ready", endpoint=f"otel_distro_health_ready:{prefix}", view_func=ready,
                     methods=["GET"])


def _flask_json(status: int, body: Any) -> tuple[bytes, int, dict[str, str]]:
    payload = json.dumps(body).encode()
    return payload, status, _json_headers(payload)
