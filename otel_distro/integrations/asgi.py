"""A lean HTTP server instrumentation for Starlette and FastAPI apps.

One SERVER span and one duration histogram per request, with the stable HTTP
semantic conventions, and nothing else on the request path: the route
template is read from the scope that Starlette's router fills in (no second
routing pass), there are no ASGI receive/send sub-spans, and attribute dicts
are built once per request. It replaces both the contrib FastAPI instrumentor
and FastAPI's own telemetry, so exactly one middleware produces spans.
``OTEL_DISTRO_HTTP_INSTRUMENTATION=contrib`` brings back the contrib one.

    bench/asgi_overhead.py measures what each choice costs per request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Status, StatusCode

from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import fastapi_telemetry
from otel_distro.integrations.histogram_points import HistogramPoints
from otel_distro.integrations.server_span import ServerSpans
from otel_distro.metrics import SECONDS_BUCKETS
from otel_distro.version import __version__

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_KNOWN_METHODS = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
_SCOPE_NAME = "otel_distro.asgi"


class _HeaderGetter(Getter[list]):
    """Reads propagation headers straight from the ASGI header list (no dict built)."""

    def get(self, carrier: list, key: str) -> list[str] | None:
        wanted = key.encode("latin-1")  # ASGI header names are lower-case bytes
        found = [v.decode("latin-1") for k, v in carrier if k == wanted]
        return found or None

    def keys(self, carrier: list) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _HeaderGetter()


def _propagation_headers() -> frozenset[bytes]:
    """The header names the configured propagators read (traceparent, baggage ... by default)."""
    try:
        return frozenset(f.lower().encode("latin-1") for f in propagate.get_global_textmap().fields)
    except Exception as err:  # every request then goes through the propagators
        report_internal_error("asgi.propagation_headers", "the propagators' header names could not be read", err)
        return frozenset()


def excluded_paths_matcher(paths: Iterable[str]) -> Callable[[str], bool]:
    """True for a path equal to one of ``paths`` or below it (``/health`` and ``/health/ready``)."""
    cleaned = [p.rstrip("/") for p in paths if p.strip("/")]
    if not cleaned:
        return lambda path: False
    pattern = re.compile("^(?:" + "|".join(re.escape(p) for p in cleaned) + ")(?:/.*)?$")
    return lambda path: pattern.match(path) is not None


def route_template(scope: Scope, outer_root_path: str) -> str | None:
    """The matched route's path template, with the prefix of any mount it sits under."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if template is None:
        return None
    mount_prefix = scope.get("root_path", "")[len(outer_root_path):]
    return mount_prefix + template


class TelemetryMiddleware:
    """The outermost ASGI middleware: one span and one histogram point per HTTP request."""

    def __init__(self, app: ASGIApp, excluded: Callable[[str], bool] = lambda path: False, *,
                 tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None) -> None:
        self.app = app
        self.excluded = excluded
        self.tracer = trace.get_tracer(_SCOPE_NAME, __version__, tracer_provider)
        self.spans = ServerSpans(self.tracer)
        self.propagation_headers = _propagation_headers()
        meter = metrics.get_meter(_SCOPE_NAME, __version__, meter_provider)
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        self.points = HistogramPoints(self.duration)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.excluded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope.get("method", "GET")
        known = method if method in _KNOWN_METHODS else "_OTHER"
        scheme = scope.get("scheme", "http")
        outer_root_path = scope.get("root_path", "")
        try:
            span, parent = self._start(scope, method, known, scheme)
            outer = otel_context.get_current()
            token = otel_context.attach(trace.set_span_in_context(span, parent))  # parent None: current
        except Exception as err:  # the request goes on untraced: telemetry never fails it
            report_internal_error("asgi.start", "starting an HTTP request's span failed; the request was served "
                                  "without one", err)
            await self.app(scope, receive, send)
            return
        status_code = 0

        async def send_and_note_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status_code
            kind = message["type"]
            if kind == "http.response.start":
                status_code = message["status"]
            elif kind == "http.response.body" and not message.get("more_body", False):
                # The server arms its keep-alive timer while it sends the last part,
                # and the timer keeps a copy of the current context for seconds: with
                # the span in it, every finished span would outlive its request.
                restore = otel_context.attach(outer)
                try:
                    await send(message)
                finally:
                    otel_context.detach(restore)
                return
            await send(message)

        error_type: str | None = None
        try:
            await self.app(scope, receive, send_and_note_status)
        except BaseException as exc:
            error_type = type(exc).__qualname__
            if isinstance(exc, Exception):
                span.record_exception(exc)
            if not status_code:
                status_code = 500
            raise
        finally:
            otel_context.detach(token)
            self._finish(span, scope, outer_root_path, known, scheme, status_code, error_type,
                         started)

    def _start(self, scope: Scope, method: str, known: str, scheme: str) -> tuple[Any, Any]:
        """The request's SERVER span, and the parent context it continues (None: the current one)."""
        span_attributes: dict[str, Any] = {
            "http.request.method": known,
            "url.scheme": scheme,
            "url.path": scope.get("path", ""),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if known != method:
            span_attributes["http.request.method_original"] = method
        client = scope.get("client")
        if client:
            span_attributes["client.address"] = client[0]
        headers = scope.get("headers") or []
        # Most requests carry no context: skip the propagators' work for them.
        parent = (propagate.extract(headers, getter=_GETTER)
                  if not self.propagation_headers or any(k in self.propagation_headers for k, _ in headers)
                  else None)
        return self.spans.start(known if known != "_OTHER" else "HTTP", parent, span_attributes), parent

    def _finish(self, span: Any, scope: Scope, outer_root_path: str, method: str, scheme: str,
                status_code: int, error_type: str | None, started: float) -> None:
        try:
            template = route_template(scope, outer_root_path)
            # The span has method and scheme already: it gets only what is new.
            end_attributes: dict[str, Any] = {}
            if template is not None:
                end_attributes["http.route"] = template
                span.update_name(f"{method if method != '_OTHER' else 'HTTP'} {template}")
            if status_code:
                end_attributes["http.response.status_code"] = status_code
            if status_code >= 500 and error_type is None:
                error_type = str(status_code)
            if error_type is not None:
                end_attributes["error.type"] = error_type
                span.set_status(Status(StatusCode.ERROR))
            if end_attributes:
                self.spans.add_attributes(span, end_attributes)
            span.end()
            metric_attributes = {"http.request.method": method, "url.scheme": scheme, **end_attributes}
            self.points.record(time.perf_counter() - started,
                               (method, scheme, template, status_code, error_type), metric_attributes)
        except Exception as err:  # telemetry never breaks the response
            report_internal_error("asgi.finish", "finishing an HTTP request's span or duration failed", err)


# ----------------------------------------------------------------- installation

_installed: list[tuple[type, str, Any]] = []


def _app_classes() -> list[type]:
    """Starlette, and FastAPI (it builds its own middleware stack, without super())."""
    classes = []
    for module, name in (("starlette.applications", "Starlette"), ("fastapi", "FastAPI")):
        try:
            classes.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return [cls for cls in classes if "build_middleware_stack" in cls.__dict__]


def instrument(excluded_paths: Iterable[str]) -> bool:
    """Put the middleware in front of every Starlette/FastAPI app's stack."""
    if _installed:
        return True
    excluded = excluded_paths_matcher(excluded_paths)
    for cls in _app_classes():
        original = cls.__dict__["build_middleware_stack"]

        def build_middleware_stack(self: Any, _original: Any = original) -> ASGIApp:
            fastapi_telemetry.turn_off_native_telemetry(self)
            return TelemetryMiddleware(_original(self), excluded)

        cls.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
        _installed.append((cls, "build_middleware_stack", original))
    return bool(_installed)


def uninstrument() -> None:
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)
