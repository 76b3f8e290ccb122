"""Every environment variable the distro reads, in one typed table.

This is the only module that reads ``os.environ``. Everything downstream
receives a frozen :class:`Settings`. A bad value never stops the host
application: it is reported on one stderr line naming the variable, the
value, what is accepted and the fallback used, unless ``OTEL_DISTRO_STRICT``
is true, in which case start-up fails with exit status 2.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import sys
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}
_SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
             "parentbased_always_off", "parentbased_traceidratio")


class InvalidValue(ValueError):
    """Raised by a parser; its message says what is accepted."""


class InvalidParts(InvalidValue):
    """Raised by a parser that keeps a value's valid parts: ``usable``, one message per part rejected."""

    def __init__(self, usable: Any, rejected: list[str]) -> None:
        super().__init__("; ".join(rejected))
        self.usable = usable
        self.rejected = tuple(rejected)


# ---------------------------------------------------------------- parsers
# Each parser takes the raw string and returns the typed value or raises
# InvalidValue with a description of what is accepted.

def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise InvalidValue("true or false")


def _parse_str(raw: str) -> str:
    return raw.strip()


def _optional_str(raw: str) -> str | None:
    return raw.strip() or None


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise InvalidValue(f"an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise InvalidValue(f"an integer from {low} to {high}")
        return value
    return parse


def _float_between(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise InvalidValue(f"a number from {low:g} to {high:g}") from None
        if not low <= value <= high:
            raise InvalidValue(f"a number from {low:g} to {high:g}")
        return value
    return parse


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise InvalidValue("one of " + ", ".join(choices))
        return value
    return parse


def _list_of(*choices: str) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(i.strip().lower() for i in raw.split(",") if i.strip()))
        if not items or any(i not in choices for i in items):
            raise InvalidValue("a comma-separated list of " + ", ".join(choices))
        if "none" in items:
            return ()
        return items
    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(i.strip() for i in raw.split(",") if i.strip())


def _header_names(raw: str) -> tuple[str, ...]:
    return tuple(name.lower() for name in _csv(raw))


def _url(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidValue("an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidValue("an http:// or https:// URL with a valid port") from None
    return value.rstrip("/")


def _optional_url(raw: str) -> str | None:
    return _url(raw) if raw.strip() else None


_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


def _host(raw: str) -> str:
    value = raw.strip()
    if not _HOST.match(value):
        raise InvalidValue("a host name or IP address")
    return value


def _key_values(raw: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValue("comma-separated key=value pairs")
        pairs.append((unquote(key.strip()), unquote(value.strip())))
    return tuple(pairs)


def _split_patterns(raw: str) -> list[str]:
    """Split at commas outside (), [] and {}: ``\\d{3,4}`` stays one pattern; ``\\,`` is a comma."""
    parts, current, depth, escaped = [], [], 0, False
    for ch in raw:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            depth += 1 if ch in "([{" else -1 if ch in ")]}" and depth else 0
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def _regex_list(raw: str) -> tuple[str, ...]:
    good, rejected = [], []
    for pattern in _split_patterns(raw):
        try:
            re.compile(pattern)
        except re.error as err:
            rejected.append(f"pattern {pattern!r} is not a valid regular expression ({err}); "
                            "skipped, the other patterns apply")
        else:
            good.append(pattern)
    if rejected:
        raise InvalidParts(tuple(good), rejected)
    return tuple(good)


_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


def _attribute_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(dict.fromkeys(k.strip() for k in raw.split(",") if k.strip()))
    if any(not _ATTRIBUTE_KEY.match(k) for k in keys):
        raise InvalidValue("comma-separated attribute keys (letters, digits, '_', '.', '-')")
    return keys


def _log_level(raw: str) -> int:
    value = raw.strip().lower()
    if value not in _LEVELS:
        raise InvalidValue("one of " + ", ".join(_LEVELS))
    return _LEVELS[value]


# ---------------------------------------------------------------- the table

@dataclass(frozen=True)
class Setting:
    """One environment variable: where it lands in Settings and how it is read."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    default_text: str
    doc: str
    secret: bool = False


_DEFAULT_EXCLUDED_URLS = "/health,/healthz,/ready,/readyz,/livez,/metrics"

TABLE: tuple[Setting, ...] = (
    # Standard OpenTelemetry variables the distro interprets itself.
    Setting("OTEL_SDK_DISABLED", "sdk_disabled", _parse_bool, False, "false",
            "Turn the whole SDK off: no providers, no instrumentation."),
    Setting("OTEL_SERVICE_NAME", "service_name", _optional_str, None, "(program name)",
            "service.name; when unset a warning is printed and the program name is used."),
    Setting("OTEL_RESOURCE_ATTRIBUTES", "resource_attributes", _key_values, (), "(none)",
            "Extra resource attributes as key=value pairs, comma-separated."),
    Setting("OTEL_TRACES_EXPORTER", "traces_exporter", _list_of("otlp", "file", "console", "none"),
            ("otlp",), "otlp",
            "Where spans go: otlp, file (OTLP JSON lines), console or none."),
    Setting("OTEL_METRICS_EXPORTER", "metrics_exporter",
            _list_of("otlp", "prometheus", "console", "none"), ("otlp",), "otlp",
            "Where metrics go: otlp, prometheus (a pull endpoint), console or none."),
    Setting("OTEL_LOGS_EXPORTER", "logs_exporter", _list_of("otlp", "file", "console", "none"),
            ("otlp",), "otlp",
            "Where log records go: otlp, file (OTLP JSON lines), console or none."),
    Setting("OTEL_EXPORTER_OTLP_ENDPOINT", "otlp_endpoint", _url, "http://localhost:4318",
            "http://localhost:4318", "Base URL of the OTLP/HTTP receiver (the Collector)."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "otlp_traces_endpoint", _optional_url, None,
            "(base + /v1/traces)", "Full URL for spans, overriding the base endpoint."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "otlp_metrics_endpoint", _optional_url, None,
            "(base + /v1/metrics)", "Full URL for metrics, overriding the base endpoint."),
    Setting("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "otlp_logs_endpoint", _optional_url, None,
            "(base + /v1/logs)", "Full URL for logs, overriding the base endpoint."),
    Setting("OTEL_EXPORTER_OTLP_PROTOCOL", "otlp_protocol", _one_of("http/protobuf"),
            "http/protobuf", "http/protobuf",
            "OTLP transport; only http/protobuf is shipped (fork-safe, no gRPC threads)."),
    Setting("OTEL_EXPORTER_OTLP_TIMEOUT", "otlp_timeout_ms", _int_between(1, 600_000), 10_000,
            "10000", "Milliseconds one OTLP export may take, retries included."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "metrics_temporality",
            _one_of("cumulative", "delta", "lowmemory"), "cumulative", "cumulative",
            "Aggregation temporality of OTLP metrics."),
    Setting("OTEL_TRACES_SAMPLER", "sampler", _one_of(*_SAMPLERS), "parentbased_always_on",
            "parentbased_always_on", "Head sampler."),
    Setting("OTEL_TRACES_SAMPLER_ARG", "sampler_arg", _float_between(0.0, 1.0), 1.0, "1.0",
            "Ratio for the traceidratio samplers."),
    Setting("OTEL_METRIC_EXPORT_INTERVAL", "metric_export_interval_ms",
            _int_between(100, 86_400_000), 60_000, "60000",
            "Milliseconds between OTLP metric exports."),
    Setting("OTEL_EXPORTER_PROMETHEUS_HOST", "prometheus_host", _host, "127.0.0.1", "127.0.0.1",
            "Address the Prometheus pull endpoint binds (loopback unless you open it)."),
    Setting("OTEL_EXPORTER_PROMETHEUS_PORT", "prometheus_port", _int_between(0, 65535), 9464,
            "9464", "Port of the Prometheus pull endpoint (0 picks a free port)."),
    # Downward-API variables a Kubernetes pod spec sets from fieldRef.
    Setting("K8S_POD_NAME", "k8s_pod_name", _optional_str, None, "(unset)",
            "k8s.pod.name, from the downward API (metadata.name)."),
    Setting("K8S_POD_UID", "k8s_pod_uid", _optional_str, None, "(unset)",
            "k8s.pod.uid, from the downward API (metadata.uid)."),
    Setting("K8S_NAMESPACE_NAME", "k8s_namespace_name", _optional_str, None, "(unset)",
            "k8s.namespace.name, from the downward API (metadata.namespace)."),
    Setting("K8S_NODE_NAME", "k8s_node_name", _optional_str, None, "(unset)",
            "k8s.node.name, from the downward API (spec.nodeName)."),
    # The distro's own variables.
    Setting("OTEL_DISTRO_STRICT", "strict", _parse_bool, False, "false",
            "Turn any invalid variable into a start-up failure (exit status 2)."),
    Setting("OTEL_DISTRO_SERVICE_VERSION", "service_version", _optional_str, None, "(unset)",
            "service.version of the resource."),
    Setting("OTEL_DISTRO_ENVIRONMENT", "environment", _optional_str, None, "(unset)",
            "deployment.environment.name of the resource (production, staging, ...)."),
    Setting("OTEL_DISTRO_FILE_EXPORT_DIR", "file_export_dir", _parse_str, "telemetry",
            "telemetry", "Folder for the file exporter: traces.jsonl and logs.jsonl, OTLP JSON."),
    Setting("OTEL_DISTRO_SYSTEM_METRICS", "system_metrics", _parse_bool, True, "true",
            "Process and runtime metrics (CPU, memory, threads, file descriptors, GC)."),
    Setting("OTEL_DISTRO_EXCLUDED_URLS", "excluded_urls", _csv,
            tuple(_DEFAULT_EXCLUDED_URLS.split(",")), _DEFAULT_EXCLUDED_URLS,
            "URL paths never traced (health checks, metrics scrapes), comma-separated."),
    Setting("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST", "capture_request_headers", _header_names,
            (), "(none)", "Request headers recorded on the SERVER span as http.request.header.<name>, "
            "comma-separated names (any case)."),
    Setting("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE", "capture_response_headers",
            _header_names, (), "(none)",
            "Response headers recorded on the SERVER span as http.response.header.<name>."),
    Setting("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS", "sanitize_header_names", _header_names,
            (), "(none)", "Captured headers whose value is replaced by [REDACTED] (authorization, cookie "
            "and set-cookie always are)."),
    Setting("OTEL_DISTRO_HTTP_INSTRUMENTATION", "http_instrumentation", _one_of("distro", "contrib"),
            "distro", "distro",
            "FastAPI/Starlette: the distro's lean middleware, or the contrib instrumentor."),
    Setting("OTEL_DISTRO_ASGI_SUBSPANS", "asgi_subspans", _parse_bool, False, "false",
            "With the contrib instrumentor, also trace each ASGI receive/send call."),
    Setting("OTEL_DISTRO_LOG_EXPORT_LEVEL", "log_export_level", _log_level, logging.INFO, "info",
            "Lowest stdlib log level bridged to OpenTelemetry logs."),
    Setting("OTEL_DISTRO_SHUTDOWN_TIMEOUT", "shutdown_timeout_s", _float_between(0.1, 300.0),
            5.0, "5", "Seconds allowed to flush telemetry at shutdown or SIGTERM (at most 0.5 s when no "
            "OTLP endpoint accepts a connection at exit: nothing could be delivered)."),
    Setting("OTEL_DISTRO_AI_SPAN_METRICS", "ai_span_metrics", _parse_bool, True, "true",
            "Derive GenAI token, duration and cost metrics from GenAI spans, sampled out or not."),
    Setting("OTEL_DISTRO_AI_PRICES_FILE", "ai_prices_file", _optional_str, None, "(none)",
            "YAML or TOML file of LLM prices (USD per million tokens) that win over genai-prices'."),
    Setting("OTEL_DISTRO_AI_PRICES_UPDATE_URL", "ai_prices_update_url", _optional_url, None, "(none)",
            "Fetch genai-prices data from this URL hourly; unset, prices never leave the machine."),
    Setting("OTEL_DISTRO_AI_COST_ATTRIBUTES", "ai_cost_attributes", _attribute_keys, (), "(none)",
            "Baggage keys copied onto the AI cost metrics (e.g. tenant,feature), comma-separated."),
    Setting("OTEL_DISTRO_BUSINESS_METRICS_FILE", "business_metrics_file", _optional_str, None, "(none)",
            "YAML file declaring business metrics, created at start-up, fetched by name in code."),
    Setting("OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES", "metric_attribute_value_limit",
            _int_between(1, 100_000), 100, "100",
            "Distinct values kept per attribute of business and AI cost metrics; more become 'other'."),
    Setting("OTEL_DISTRO_EXPORT_ERROR_INTERVAL", "export_error_interval_s",
            _float_between(0.0, 86_400.0), 60.0, "60",
            "Seconds between two export-error log lines (more are counted, not printed)."),
    Setting("OTEL_DISTRO_LOG_FORMAT", "log_format", _one_of("json", "text", "off"), "off", "off",
            "Console logs written by the distro: json (one object per line, with trace_id), text, "
            "or off (the app's console is left as it is)."),
    Setting("OTEL_DISTRO_REDACT", "redact", _parse_bool, True, "true",
            "Redact secrets and PII from logs, spans and metric attributes before they leave."),
    Setting("OTEL_DISTRO_REDACT_KEYS", "redact_keys", _csv, (), "(none)",
            "More attribute/extra key names whose values are redacted, comma-separated."),
    Setting("OTEL_DISTRO_REDACT_PATTERNS", "redact_patterns", _regex_list, (), "(none)",
            "More regular expressions to redact, comma-separated (commas inside (), [], {} or "
            "written \\, do not split); an invalid one is reported and skipped."),
    Setting("OTEL_DISTRO_REDACT_EMAILS", "redact_emails", _one_of("mask", "hash", "keep"), "mask",
            "mask", "E-mail addresses: mask (j***@example.com), hash ([email:16 hex digits of SHA-256]) or keep."),
)

# Standard variables set here as defaults so that instrumentations reading
# them directly agree with the distro. Only missing ones are set.
DISTRO_DEFAULTS: Mapping[str, str] = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_SEMCONV_STABILITY_OPT_IN": "http,database",
    # Read by opentelemetry-instrument after the distro is loaded: with the
    # upstream distro installed too, our configurator still runs.
    "OTEL_PYTHON_CONFIGURATOR": "otel_distro",
}


@dataclass(frozen=True)
class Problem:
    """A variable whose value was rejected."""

    env: str
    value: str
    accepted: str
    fallback: str
    detail: str = ""  # a part of the value rejected while the rest is used

    @property
    def message(self) -> str:
        if self.detail:
            return f"otel-distro: {self.env}: {self.detail}"
        return (f"otel-distro: {self.env}={self.value!r} is invalid (accepted: {self.accepted});"
                f" using {self.fallback}")


@dataclass(frozen=True, init=False, repr=False, eq=False)
class Settings:
    """The effective configuration: built once, never re-read from the environment.

    Field types are declared here; defaults live in TABLE only (``load({})``
    gives the defaults). Built with keyword arguments.
    """

    sdk_disabled: bool
    service_name: str | None
    resource_attributes: tuple[tuple[str, str], ...]
    traces_exporter: tuple[str, ...]
    metrics_exporter: tuple[str, ...]
    logs_exporter: tuple[str, ...]
    otlp_endpoint: str
    otlp_traces_endpoint: str | None
    otlp_metrics_endpoint: str | None
    otlp_logs_endpoint: str | None
    otlp_protocol: str
    otlp_timeout_ms: int
    metrics_temporality: str
    sampler: str
    sampler_arg: float
    metric_export_interval_ms: int
    prometheus_host: str
    prometheus_port: int
    k8s_pod_name: str | None
    k8s_pod_uid: str | None
    k8s_namespace_name: str | None
    k8s_node_name: str | None
    strict: bool
    service_version: str | None
    environment: str | None
    file_export_dir: str
    system_metrics: bool
    excluded_urls: tuple[str, ...]
    capture_request_headers: tuple[str, ...]
    capture_response_headers: tuple[str, ...]
    sanitize_header_names: tuple[str, ...]
    http_instrumentation: str
    asgi_subspans: bool
    log_export_level: int
    shutdown_timeout_s: float
    ai_span_metrics: bool
    ai_prices_file: str | None
    ai_prices_update_url: str | None
    ai_cost_attributes: tuple[str, ...]
    business_metrics_file: str | None
    metric_attribute_value_limit: int
    export_error_interval_s: float
    log_format: str
    redact: bool
    redact_keys: tuple[str, ...]
    redact_patterns: tuple[str, ...]
    redact_emails: str
    # Bookkeeping, not configuration.
    program_name: str = "python"
    problems: tuple[Problem, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)

    # __init__, __repr__ and __eq__ written once here rather than generated by @dataclass:
    # compiling the generated ones for this many fields cost ~1 ms of every start-up.
    def __init__(self, **values: Any) -> None:
        for spec in _SETTINGS_FIELDS:
            if spec.name in values:
                value = values.pop(spec.name)
            elif spec.default is not dataclasses.MISSING:
                value = spec.default
            elif spec.default_factory is not dataclasses.MISSING:
                value = spec.default_factory()
            else:
                raise TypeError(f"Settings() missing keyword argument {spec.name!r}")
            object.__setattr__(self, spec.name, value)
        if values:
            raise TypeError(f"Settings() got unexpected keyword argument(s) {', '.join(map(repr, values))}")

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{f.name}={getattr(self, f.name)!r}' for f in _SETTINGS_FIELDS)})"

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (tuple(getattr(self, f.name) for f in _SETTINGS_FIELDS)
                == tuple(getattr(other, f.name) for f in _SETTINGS_FIELDS))

    def signal_endpoint(self, signal: str) -> str:
        """The OTLP/HTTP URL for one signal: its own variable, else base + /v1/<signal>."""
        own = getattr(self, f"otlp_{signal}_endpoint")
        return own or f"{self.otlp_endpoint}/v1/{signal}"

    def with_overrides(self, **overrides: Any) -> Settings:
        unknown = sorted(set(overrides) - _FIELD_NAMES)
        if unknown:
            raise TypeError(f"unknown setting(s) for otel_distro.configure(): {', '.join(unknown)}")
        sources = dict(self.sources)
        sources.update({name: "configure()" for name in overrides})
        return dataclasses.replace(self, **overrides, sources=sources)


_FIELD_NAMES = frozenset(s.field for s in TABLE)
_SETTINGS_FIELDS = dataclasses.fields(Settings)


class StrictModeError(SystemExit):
    """Start-up refused because OTEL_DISTRO_STRICT is on and a value is invalid."""


def _program_name(argv: list[str]) -> str:
    if not argv or not argv[0]:
        return "python"
    name = os.path.basename(argv[0])
    if name in ("-c", "-m", ""):
        return "python"
    return os.path.splitext(name)[0] or "python"


def load(environ: Mapping[str, str] | None = None, *, report: bool = True) -> Settings:
    """Read the table from ``environ`` (default: the process environment).

    Each invalid value is reported on one stderr line (when ``report``) and
    replaced by its default; with OTEL_DISTRO_STRICT=true the first report is
    followed by ``SystemExit(2)``.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {s.field: s.default for s in TABLE}
    sources: dict[str, str] = {}
    problems: list[Problem] = []
    for setting in TABLE:
        raw = env.get(setting.env)
        if raw is None or not raw.strip():
            sources[setting.field] = "default"
            continue
        try:
            values[setting.field] = setting.parse(raw)
            sources[setting.field] = "environment"
        except InvalidParts as err:
            values[setting.field] = err.usable
            shown = "<hidden>" if setting.secret else raw
            problems.extend(Problem(setting.env, shown, "", "", detail=d) for d in err.rejected)
            sources[setting.field] = "environment (invalid parts ignored)"
        except InvalidValue as err:
            shown = "<hidden>" if setting.secret else raw
            problems.append(Problem(setting.env, shown, str(err), setting.default_text))
            sources[setting.field] = "default (invalid value ignored)"
    settings = Settings(**values, program_name=_program_name(sys.argv),
                        problems=tuple(problems), sources=sources)
    if report:
        for problem in problems:
            sys.stderr.write(problem.message + "\n")
        sys.stderr.flush()
        if problems and settings.strict:
            raise StrictModeError(2)
    return settings


def export_file(settings: Settings, signal: str) -> str:
    """The file exporter's path for one signal, its folder created if missing."""
    os.makedirs(settings.file_export_dir, exist_ok=True)
    return os.path.join(settings.file_export_dir, f"{signal}.jsonl")


_SECRET_NAME = re.compile(r"HEADERS|KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.I)


def other_otel_variables(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """OTEL_* variables outside the table (read by the SDK itself), secret-looking ones masked."""
    env = os.environ if environ is None else environ
    known = {s.env for s in TABLE}
    return {name: "****" if _SECRET_NAME.search(name) else value
            for name, value in sorted(env.items())
            if name.startswith("OTEL_") and name not in known}


def child_environment(values: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without its OTEL_* variables, plus ``values``: for a child."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(values)
    return env


# Set by the first process that runs opentelemetry-instrument's hook; its children inherit the hook
# (PYTHONPATH) and this variable. Not OTEL_-prefixed: tools that strip OTEL_* for a child keep it.
HOOK_OWNER_VARIABLE = "_OTEL_DISTRO_HOOK_OWNER"


def claim_hook(environ: MutableMapping[str, str] | None = None) -> None:
    """Note this process as the one whose telemetry the hook set up (children see a different pid)."""
    env = os.environ if environ is None else environ
    env.setdefault(HOOK_OWNER_VARIABLE, str(os.getpid()))


def hook_inherited(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process got opentelemetry-instrument's hook from a parent that ran it first."""
    env = os.environ if environ is None else environ
    owner = env.get(HOOK_OWNER_VARIABLE)
    return owner is not None and owner != str(os.getpid())


def hook_inherited_unconfigured(environ: Mapping[str, str] | None = None) -> bool:
    """A child that only inherited the hook: no OTEL_* variable of its own (a tool stripped them).

    Such a process stays quiet: no telemetry, no warnings, no exit wait.
    """
    env = os.environ if environ is None else environ
    return hook_inherited(env) and not any(name.startswith("OTEL_") for name in env)


def apply_distro_defaults(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the distro's defaults for standard variables the user left unset."""
    env = os.environ if environ is None else environ
    for name, value in DISTRO_DEFAULTS.items():
        env.setdefault(name, value)


def markdown_table() -> str:
    """The env-var table of the docs, generated so that it cannot drift."""
    lines = ["| Variable | Default | Description |", "| --- | --- | --- |"]
    for s in TABLE:
        lines.append(f"| `{s.env}` | `{s.default_text}` | {s.doc} |")
    return "\n".join(lines)
