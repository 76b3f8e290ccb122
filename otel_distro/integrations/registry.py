"""Every integration the distro knows, one entry each: adding one touches this module only.

An entry names the library it instruments, the contrib instrumentation (its ``opentelemetry_instrumentor`` entry
point and distribution), the options the distro passes it, the distro's extra that installs it, what the distro
adds to it or uses instead of it, and the framework's own telemetry it steps aside for. ``distro.py`` loads
instrumentations through it, ``doctor`` checks installed libraries against it, and
``tests/test_packaging.py`` checks the extras in pyproject.toml against it.
"""

from __future__ import annotations

import importlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from otel_distro.settings import Settings


def _no_options(_chosen: Settings) -> dict[str, Any]:
    return {}


def excluded_urls_pattern(paths: tuple[str, ...]) -> str:
    """Contrib's excluded-URL list (regexes searched in the full URL) for plain paths."""
    return ",".join(re.escape(path) + r"(?:[/?#]|$)" for path in paths)


def _web_server_options(chosen: Settings) -> dict[str, Any]:
    return {"excluded_urls": excluded_urls_pattern(chosen.excluded_urls)}


def _asgi_server_options(chosen: Settings) -> dict[str, Any]:
    options = _web_server_options(chosen)
    if not chosen.asgi_subspans:
        options["exclude_spans"] = ["receive", "send"]
    return options


def _lean_asgi(chosen: Settings) -> None:
    from otel_distro.integrations import asgi

    asgi.instrument(chosen.excluded_urls, asgi.HeaderCapture(
        chosen.capture_request_headers, chosen.capture_response_headers, chosen.sanitize_header_names))


def _uses_lean_asgi(chosen: Settings) -> bool:
    return chosen.http_instrumentation == "distro"


def _after(module: str) -> Callable[[Settings], None]:
    """What the distro adds once the contrib instrumentor ran: ``module.instrument()``."""

    def add(_chosen: Settings) -> None:
        importlib.import_module(module).instrument()

    return add


def _genai_after(name: str) -> Callable[[Settings], None]:
    """What the distro's GenAI support adds once a GenAI instrumentor ran (stream usage for OpenAI)."""

    def add(chosen: Settings) -> None:
        from otel_distro import ai

        ai.instrumented(name, chosen)

    return add


@dataclass(frozen=True)
class Integration:
    """One library the distro instruments, and how."""

    name: str  # the instrumentation's opentelemetry_instrumentor entry point
    libraries: tuple[str, ...]  # distributions of the library (any one installed means the service may use it)
    instrumentation: str  # the distribution that instruments it
    extra: str | None  # the otel-distro extra that installs the instrumentation (None: none yet)
    options: Callable[[Settings], dict[str, Any]] = _no_options
    # Replaces the instrumentor when ``replaces_when(settings)``: the distro's own instrumentation.
    replacement: Callable[[Settings], None] | None = None
    replaces_when: Callable[[Settings], bool] = lambda _chosen: False
    after: Callable[[Settings], None] | None = None  # what the distro adds to the instrumentor
    native_telemetry: str = ""  # the library's own telemetry the distro steps aside for (docs, doctor)
    # Top-level modules whose first import applies the instrumentation (none: applied at start-up).
    modules: tuple[str, ...] = ()
    # Database instrumentations: records db.client.operation.duration itself (the DB-API ones, with the stable
    # database conventions on); names its CLIENT span after the operation without setting db.operation.name.
    records_operation_duration: bool = False
    span_name_is_operation: bool = False

    @property
    def scope(self) -> str:
        """The instrumentation scope of its spans and metrics (its module)."""
        return "opentelemetry.instrumentation." + self.instrumentation.removeprefix(
            "opentelemetry-instrumentation-").replace("-", "_")


INTEGRATIONS: tuple[Integration, ...] = (
    Integration("fastapi", ("fastapi",), "opentelemetry-instrumentation-fastapi", "fastapi",
                options=_asgi_server_options, replacement=_lean_asgi, replaces_when=_uses_lean_asgi,
                native_telemetry="FastAPI(telemetry={...}) with its own providers",
                modules=("fastapi",)),
    # No library listed: FastAPI apps are Starlette apps, and the lean middleware serves both without contrib's.
    Integration("starlette", (), "opentelemetry-instrumentation-starlette", None,
                options=_asgi_server_options, replacement=_lean_asgi, replaces_when=_uses_lean_asgi,
                native_telemetry="starlette.middleware.opentelemetry.OpenTelemetryMiddleware in the app's stack",
                modules=("starlette",)),
    Integration("flask", ("flask",), "opentelemetry-instrumentation-flask", "flask",
                options=_web_server_options, after=_after("otel_distro.integrations.flask"),
                modules=("flask",)),
    Integration("django", ("django",), "opentelemetry-instrumentation-django", None, options=_web_server_options,
                modules=("django",)),
    Integration("celery", ("celery",), "opentelemetry-instrumentation-celery", "celery",
                after=_after("otel_distro.integrations.celery"),
                modules=("celery",)),
    Integration("requests", ("requests",), "opentelemetry-instrumentation-requests", "http-clients",
                modules=("requests",)),
    Integration("httpx", ("httpx",), "opentelemetry-instrumentation-httpx", "http-clients",
                modules=("httpx",)),
    Integration("httpx2", ("httpx2",), "opentelemetry-instrumentation-httpx", "http-clients",
                modules=("httpx2",)),
    Integration("aiohttp-client", ("aiohttp",), "opentelemetry-instrumentation-aiohttp-client", "http-clients",
                modules=("aiohttp",)),
    Integration("sqlalchemy", ("sqlalchemy",), "opentelemetry-instrumentation-sqlalchemy", "sqlalchemy",
                after=_after("otel_distro.integrations.sqlalchemy"), modules=("sqlalchemy",)),
    Integration("psycopg", ("psycopg",), "opentelemetry-instrumentation-psycopg", "postgres",
                modules=("psycopg",), records_operation_duration=True, span_name_is_operation=True),
    Integration("psycopg2", ("psycopg2", "psycopg2-binary"), "opentelemetry-instrumentation-psycopg2", "postgres",
                modules=("psycopg2",), records_operation_duration=True, span_name_is_operation=True),
    Integration("asyncpg", ("asyncpg",), "opentelemetry-instrumentation-asyncpg", "postgres",
                modules=("asyncpg",), span_name_is_operation=True),
    Integration("redis", ("redis",), "opentelemetry-instrumentation-redis", "redis",
                modules=("redis",)),
    Integration("pymysql", ("pymysql",), "opentelemetry-instrumentation-pymysql", None,
                modules=("pymysql",), records_operation_duration=True, span_name_is_operation=True),
    Integration("pymongo", ("pymongo",), "opentelemetry-instrumentation-pymongo", None,
                modules=("pymongo",)),
    Integration("grpc_client", ("grpcio",), "opentelemetry-instrumentation-grpc", None,
                modules=("grpc",)),
    Integration("botocore", ("botocore",), "opentelemetry-instrumentation-botocore", None,
                modules=("botocore",)),
    Integration("kafka", ("kafka-python",), "opentelemetry-instrumentation-kafka-python", None,
                modules=("kafka",)),
    Integration("confluent_kafka", ("confluent-kafka",), "opentelemetry-instrumentation-confluent-kafka", None,
                modules=("confluent_kafka",)),
    Integration("pika", ("pika",), "opentelemetry-instrumentation-pika", None,
                modules=("pika",)),
    Integration("aio-pika", ("aio-pika",), "opentelemetry-instrumentation-aio-pika", None,
                modules=("aio_pika",)),
    Integration("openai", ("openai",), "opentelemetry-instrumentation-genai-openai", "openai",
                after=_genai_after("openai"), modules=("openai",)),
    Integration("anthropic", ("anthropic",), "opentelemetry-instrumentation-genai-anthropic", "anthropic",
                after=_genai_after("anthropic"), modules=("anthropic",)),
    Integration("openai_agents", ("openai-agents",), "opentelemetry-instrumentation-genai-openai-agents", "agents",
                after=_genai_after("openai_agents"), modules=("agents",)),
)
BY_NAME: dict[str, Integration] = {integration.name: integration for integration in INTEGRATIONS}


@dataclass
class LoadOutcomes:
    """What happened to each instrumentation ``opentelemetry-instrument`` offered (doctor, reports)."""

    instrumented: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # name -> why
    waiting: set[str] = field(default_factory=set)  # applied on the library's first import
    refused: dict[str, str] = field(default_factory=dict)  # name -> why (checked on that first import)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def observed(self) -> bool:
        """Whether the distro loaded instrumentations in this process at all."""
        return bool(self.instrumented or self.failed or self.waiting or self.refused)

    def note_waiting(self, name: str) -> None:
        with self._lock:
            self.waiting.add(name)

    def note_instrumented(self, name: str) -> None:
        with self._lock:
            self.waiting.discard(name)
            self.instrumented.append(name)

    def note_failed(self, name: str, why: str) -> None:
        with self._lock:
            self.waiting.discard(name)
            self.failed[name] = why

    def note_refused(self, name: str, why: str) -> None:
        with self._lock:
            self.waiting.discard(name)
            self.refused[name] = why


outcomes = LoadOutcomes()


def database_scopes() -> tuple[frozenset[str], frozenset[str]]:
    """Scopes of the database instrumentations that record their own operation duration, and of those whose
    span name is the operation name (``db_metrics`` completes what they leave out)."""
    return (frozenset(i.scope for i in INTEGRATIONS if i.records_operation_duration),
            frozenset(i.scope for i in INTEGRATIONS if i.span_name_is_operation))


def extras() -> dict[str, list[str]]:
    """The otel-distro extras the registry asks for: extra -> instrumentation distributions."""
    found: dict[str, list[str]] = {}
    for integration in INTEGRATIONS:
        if integration.extra is not None and integration.instrumentation not in found.get(integration.extra, ()):
            found.setdefault(integration.extra, []).append(integration.instrumentation)
    return found


def service_libraries() -> dict[str, str]:
    """Library distribution -> the distribution instrumenting it (doctor's check)."""
    return {library: integration.instrumentation
            for integration in INTEGRATIONS for library in integration.libraries}


def extra_for(instrumentation: str) -> str | None:
    """The otel-distro extra that installs ``instrumentation``, if one does."""
    return next((i.extra for i in INTEGRATIONS if i.instrumentation == instrumentation), None)
