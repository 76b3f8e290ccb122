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

import itertools
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import Any

from opentelemetry import _logs, metrics, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry._logs import SeverityNumber
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
# Set by Starlette's own middleware in the scope of the requests it traces.
_NATIVE_SCOPE_FLAG = "starlette.opentelemetry"


class _HeaderGetter(Getter[list]):
    """Reads propagation headers straight from the ASGI header list (no dict built).

    Names compare case-insensitively: ASGI servers send them lower-case, but a
    propagator may ask in any case (X-Ray's ``X-Amzn-Trace-Id``).
    """

    def get(self, carrier: list, key: str) -> list[str] | None:
        wanted = key.lower().encode("latin-1")
        found = [v.decode("latin-1") for k, v in carrier if k.lower() == wanted]
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


_DEFAULT_PORTS = {"http": 80, "https": 443}
# Query parameters whose values the HTTP conventions require redacted in url.query.
_SENSITIVE_QUERY_PARAMETERS = ("AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature")
_SENSITIVE_QUERY = re.compile(
    r"(?<![^&?])(" + "|".join(re.escape(name) for name in _SENSITIVE_QUERY_PARAMETERS) + r")=[^&]*")
_ALWAYS_SANITIZED = frozenset({"authorization", "cookie", "set-cookie", "proxy-authorization"})
_REDACTED = "REDACTED"


def url_query(raw: bytes) -> str:
    """``url.query`` with the values of the parameters the conventions name replaced by REDACTED."""
    query = raw.decode("latin-1")
    if any(name in query for name in _SENSITIVE_QUERY_PARAMETERS):
        query = _SENSITIVE_QUERY.sub(lambda m: f"{m.group(1)}={_REDACTED}", query)
    return query


def server_address(host: bytes | None, scope: Scope, scheme: str) -> tuple[str | None, int | None]:
    """``server.address`` and ``server.port`` from the Host header, else from the socket the server bound."""
    if host:
        text = host.decode("latin-1")
        if text.startswith("["):  # an IPv6 literal: [::1]:8000
            name, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = text.partition(":")
        return name, int(port) if port.isdigit() else _DEFAULT_PORTS.get(scheme)
    server = scope.get("server")
    if server:
        return server[0], server[1]
    return None, None


class HeaderCapture:
    """Which request and response headers become span attributes, and which of those are masked."""

    def __init__(self, request: Iterable[str] = (), response: Iterable[str] = (),
                 sanitize: Iterable[str] = ()) -> None:
        self.request = frozenset(name.lower().encode("latin-1") for name in request)
        self.response = frozenset(name.lower().encode("latin-1") for name in response)
        self.sanitize = _ALWAYS_SANITIZED | {name.lower() for name in sanitize}

    def attributes(self, prefix: str, headers: Iterable[tuple[bytes, bytes]], wanted: frozenset[bytes],
                   into: dict[str, Any]) -> None:
        found: dict[str, list[str]] = {}
        for name, value in headers:
            lowered = name.lower()
            if lowered in wanted:
                key = lowered.decode("latin-1")
                found.setdefault(key, []).append(
                    _REDACTED if key in self.sanitize else value.decode("latin-1"))
        for key, values in found.items():
            into[f"{prefix}.{key}"] = values


class _ActiveRequests:
    """``http.server.active_requests``: requests started and ended, counted per attribute set, reported by an
    observable counter.

    An UpDownCounter.add per request start and end would cost ~6 µs each, a locked dict ~0.4 µs; the two
    ``itertools.count`` of a set cost one C call each (atomic under the GIL), and the SDK reads them only when
    it collects.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], tuple[Iterator[int], Iterator[int]]] = {}
        self._lock = threading.Lock()  # taken only to add an attribute set, or a provider
        self._providers: set[int] = set()

    def register(self, meter_provider: metrics.MeterProvider | None) -> None:
        provider = meter_provider or metrics.get_meter_provider()
        with self._lock:
            if id(provider) in self._providers:
                return
            self._providers.add(id(provider))
        provider.get_meter(_SCOPE_NAME, __version__).create_observable_up_down_counter(
            "http.server.active_requests", [self._observe], unit="{request}",
            description="Number of active HTTP server requests.")

    def counts(self, key: tuple[str, str]) -> tuple[Iterator[int], Iterator[int]]:
        """The (started, ended) counts of this attribute set: ``next()`` on one counts a request."""
        found = self._counts.get(key)
        if found is None:
            with self._lock:
                found = self._counts.setdefault(key, (itertools.count(), itertools.count()))
        return found

    def _observe(self, _options: Any) -> list[metrics.Observation]:
        observations = []
        for (method, scheme), (started, ended) in list(self._counts.items()):
            # A count is read by taking its next value: both move on by one, so their difference stays. The
            # ended count is read first: a request ending in between is then still counted as active, never
            # as ended before it started.
            ended_so_far = next(ended)
            observations.append(metrics.Observation(next(started) - ended_so_far,
                                                    {"http.request.method": method, "url.scheme": scheme}))
        return observations


_ACTIVE = _ActiveRequests()


def _log_unhandled(exc: BaseException, logger_provider: _logs.LoggerProvider | None) -> None:
    """One ERROR log record per unhandled exception, in the request's span context.

    uvicorn logs it on ``uvicorn.error``, which does not propagate to the root logger the bridge
    listens on: without this record the exception would be only a span event.
    """
    if getattr(exc, "__otel_distro_logged__", False):
        return  # a mounted app's middleware logged it already
    try:
        exc.__otel_distro_logged__ = True  # type: ignore[attr-defined]
    except Exception:  # the app's exception refuses attributes (__slots__): it may be logged twice, nothing worse
        pass
    _logs.get_logger(_SCOPE_NAME, __version__, logger_provider).emit(
        severity_number=SeverityNumber.ERROR, severity_text="ERROR",
        body=f"Unhandled exception in ASGI application: {type(exc).__qualname__}: {exc}", exception=exc,
        event_name="http.server.request.exception")


class TelemetryMiddleware:
    """The outermost ASGI middleware: one span and the HTTP server metrics per HTTP request."""

    def __init__(self, app: ASGIApp, excluded: Callable[[str], bool] = lambda path: False, *,
                 tracer_provider: trace.TracerProvider | None = None,
                 meter_provider: metrics.MeterProvider | None = None,
                 logger_provider: _logs.LoggerProvider | None = None,
                 capture: HeaderCapture | None = None) -> None:
        self.app = app
        self.logger_provider = logger_provider
        self.excluded = excluded
        self.capture = capture or HeaderCapture()
        # Without a provider of its own it follows the global one, as the frameworks' own telemetry does, on every
        # request: tests and apps swap what ``trace.get_tracer_provider`` answers (FastAPI's own suite does).
        self.follows_global_provider = tracer_provider is None
        self._use_tracer_provider(tracer_provider or trace.get_tracer_provider())
        self.propagation_headers = _propagation_headers()
        meter = metrics.get_meter(_SCOPE_NAME, __version__, meter_provider)
        self.duration = meter.create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=SECONDS_BUCKETS)
        # One request's three points are recorded together: one attribute set, one lookup.
        self.points = HistogramPoints(
            self.duration,
            meter.create_histogram("http.server.request.body.size", unit="By",
                                   description="Size of HTTP server request bodies."),
            meter.create_histogram("http.server.response.body.size", unit="By",
                                   description="Size of HTTP server response bodies."))
        _ACTIVE.register(meter_provider)

    def _use_tracer_provider(self, provider: trace.TracerProvider) -> None:
        self.tracer_provider = provider
        self.tracer = provider.get_tracer(_SCOPE_NAME, __version__)
        self.spans = ServerSpans(self.tracer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.follows_global_provider and trace.get_tracer_provider() is not self.tracer_provider:
            self._use_tracer_provider(trace.get_tracer_provider())
        if (scope["type"] != "http" or self.excluded(scope.get("path", ""))
                or _NATIVE_SCOPE_FLAG in scope):  # an outer native middleware traces it
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope.get("method", "GET")
        known = method if method in _KNOWN_METHODS else "_OTHER"
        scheme = scope.get("scheme", "http")
        outer_root_path = scope.get("root_path", "")
        try:
            span, parent, content_length, chunked = self._start(scope, method, known, scheme)
            outer = otel_context.get_current()
            token = otel_context.attach(trace.set_span_in_context(span, parent))  # parent None: current
        except Exception as err:  # the request goes on untraced: telemetry never fails it
            report_internal_error("asgi.start", "starting an HTTP request's span failed; the request was served "
                                  "without one", err)
            await self.app(scope, receive, send)
            return
        started_requests, ended_requests = _ACTIVE.counts((known, scheme))
        next(started_requests)
        status_code = 0
        sent_bytes = 0
        received_bytes = int(content_length) if content_length is not None and content_length.isdigit() else 0
        response_attributes: dict[str, Any] = {}
        capture = self.capture

        async def send_and_note_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status_code, sent_bytes
            kind = message["type"]
            if kind == "http.response.start":
                status_code = message["status"]
                if capture.response:
                    capture.attributes("http.response.header", message.get("headers") or (), capture.response,
                                       response_attributes)
            elif kind == "http.response.body":
                sent_bytes += len(message.get("body", b""))
                if not message.get("more_body", False):
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

        if chunked and content_length is None:
            # No length given: count what the app reads.
            original_receive = receive

            async def receive() -> MutableMapping[str, Any]:
                nonlocal received_bytes
                message = await original_receive()
                received_bytes += len(message.get("body", b""))
                return message

        error_type: str | None = None
        try:
            await self.app(scope, receive, send_and_note_status)
        except BaseException as exc:
            error_type = type(exc).__qualname__
            if isinstance(exc, Exception):
                span.record_exception(exc)
                try:
                    _log_unhandled(exc, self.logger_provider)
                except Exception as err:
                    report_internal_error("asgi.exception_log", "an unhandled exception was not logged", err)
            if not status_code:
                status_code = 500
            raise
        finally:
            otel_context.detach(token)
            next(ended_requests)
            self._finish(span, scope, outer_root_path, known, scheme, status_code, error_type,
                         started, received_bytes, sent_bytes, response_attributes)

    def _start(self, scope: Scope, method: str, known: str,
               scheme: str) -> tuple[Any, Any, bytes | None, bool]:
        """The request's SERVER span, the parent context it continues (None: the current one), the request's
        Content-Length header and whether its body is chunked."""
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
        query = scope.get("query_string")
        if query:
            span_attributes["url.query"] = url_query(query)
        headers = scope.get("headers") or []
        # One pass over the headers for everything the span needs from them.
        host = user_agent = content_length = None
        chunked = False
        propagation = self.propagation_headers
        has_context = not propagation  # unknown fields: always ask the propagators
        for name, value in headers:
            name = name.lower()
            if name == b"host":
                host = value
            elif name == b"user-agent":
                user_agent = value
            elif name == b"content-length":
                content_length = value
            elif name == b"transfer-encoding":
                chunked = True
            elif name in propagation:
                has_context = True
        address, port = server_address(host, scope, scheme)
        if address:
            span_attributes["server.address"] = address
            if port:
                span_attributes["server.port"] = port
        if user_agent is not None:
            span_attributes["user_agent.original"] = user_agent.decode("latin-1")
        capture = self.capture
        if capture.request:
            capture.attributes("http.request.header", headers, capture.request, span_attributes)
        # Most requests carry no context: skip the propagators' work for them.
        parent = propagate.extract(headers, getter=_GETTER) if has_context else None
        span = self.spans.start(known if known != "_OTHER" else "HTTP", parent, span_attributes)
        return span, parent, content_length, chunked

    def _finish(self, span: Any, scope: Scope, outer_root_path: str, method: str, scheme: str,
                status_code: int, error_type: str | None, started: float, received_bytes: int,
                sent_bytes: int, response_attributes: dict[str, Any]) -> None:
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
            if end_attributes or response_attributes:
                self.spans.add_attributes(span, {**end_attributes, **response_attributes}
                                          if response_attributes else end_attributes)
            span.end()
            metric_attributes = {"http.request.method": method, "url.scheme": scheme, **end_attributes}
            key = (method, scheme, template, status_code, error_type)
            self.points.record((time.perf_counter() - started, received_bytes, sent_bytes), key, metric_attributes)
        except Exception as err:  # telemetry never breaks the response
            report_internal_error("asgi.finish", "finishing an HTTP request's span or metrics failed", err)


# ----------------------------------------------------------------- installation

_installed: list[tuple[type, str, Any]] = []


# Middlewares that already make the request's SERVER span: Starlette's own (>= 1.x) and
# contrib's ASGI one, whoever added it.
_NATIVE_MIDDLEWARES = frozenset({
    ("starlette.middleware.opentelemetry", "OpenTelemetryMiddleware"),
    ("opentelemetry.instrumentation.asgi", "OpenTelemetryMiddleware"),
})


def _app_set_up_its_own_telemetry(app: Any, stack: Any) -> bool:
    """Whether ``app`` traces its requests itself: it gave FastAPI's telemetry providers of its
    own, or has an OpenTelemetry middleware in its stack."""
    if fastapi_telemetry.has_own_providers(app):
        return True
    seen: set[int] = set()
    while stack is not None and id(stack) not in seen:
        seen.add(id(stack))
        if (type(stack).__module__, type(stack).__name__) in _NATIVE_MIDDLEWARES:
            return True
        stack = getattr(stack, "app", None)
    return False


def _app_classes() -> list[type]:
    """Starlette, and FastAPI (it builds its own middleware stack, without super())."""
    classes = []
    for module, name in (("starlette.applications", "Starlette"), ("fastapi", "FastAPI")):
        if module == "fastapi" and module not in sys.modules:
            continue  # a Starlette app need not import FastAPI; FastAPI's first import patches it
        try:
            classes.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            continue
    return [cls for cls in classes if "build_middleware_stack" in cls.__dict__]


def instrument(excluded_paths: Iterable[str], capture: HeaderCapture | None = None) -> bool:
    """Put the middleware in front of every Starlette/FastAPI app's stack."""
    # Called again when FastAPI is imported after Starlette (on first import): patch what is new only.
    patched = {owner for owner, _, _ in _installed}
    excluded = excluded_paths_matcher(excluded_paths)
    for cls in _app_classes():
        if cls in patched:
            continue
        original = cls.__dict__["build_middleware_stack"]

        def build_middleware_stack(self: Any, _original: Any = original) -> ASGIApp:
            stack = _original(self)
            if _app_set_up_its_own_telemetry(self, stack):
                return stack  # good manners: the app's own telemetry, with its own providers
            fastapi_telemetry.turn_off_native_telemetry(self)
            return TelemetryMiddleware(stack, excluded, capture=capture)

        cls.build_middleware_stack = build_middleware_stack  # type: ignore[method-assign]
        _installed.append((cls, "build_middleware_stack", original))
    return bool(_installed)


def uninstrument() -> None:
    while _installed:
        owner, name, original = _installed.pop()
        setattr(owner, name, original)
