"""Every environment variable the distro reads, in one typed table.

This is the only module that reads ``os.environ``. Everything downstream
receives a frozen :class:`Settings`. A bad value never stops the host
application: it is reported on one stderr line naming the variable, the
value, what is accepted and the fallback used, unless ``OTEL_DISTRO_STRICT``
is true, in which case start-up fails with exit status 2.

With ``OTEL_CONFIG_FILE`` set, the distro's own settings may also come from
the file's ``distribution.otel_distro`` section (each row's ``file_key``); a
value there wins over the variable (see :mod:`otel_distro.config_file`).
Rows marked ``live`` may be changed while the service runs (OpAMP,
:mod:`otel_distro.remote`).
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
SAMPLER_ENTRY_POINTS = "opentelemetry_traces_sampler"
BUILTIN_SAMPLERS = ("always_on", "always_off", "traceidratio", "parentbased_always_on",
                    "parentbased_always_off", "parentbased_traceidratio")


class InvalidValue(ValueError):
    """Raised by a parser; its message says what is accepted."""


class InvalidParts(InvalidValue):
    """Raised by a parser that keeps a value's valid parts: ``usable``, one message per part rejected."""

    # What the setting's source says of such a value (doctor shows it).
    source_note = "invalid parts ignored"

    def __init__(self, usable: Any, rejected: list[str]) -> None:
        super().__init__("; ".join(rejected))
        self.usable = usable
        self.rejected = tuple(rejected)


class Unusable(InvalidParts):
    """Raised by a parser for a value with nothing to fall back to: another component reads the variable itself
    (the SDK's exporters read the TLS files). The one line says what follows; the setting keeps no value."""

    source_note = "unusable, no fallback: read as given by the SDK"

    def __init__(self, what_follows: str) -> None:
        super().__init__(None, [what_follows])


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


def _optional_int_between(low: int, high: int) -> Callable[[str], int | None]:
    parse = _int_between(low, high)
    return lambda raw: parse(raw) if raw.strip() else None


def _sampler_name(raw: str) -> str:
    value = raw.strip()
    if value.lower() in BUILTIN_SAMPLERS:
        return value.lower()
    from importlib.metadata import entry_points

    if value and entry_points(group=SAMPLER_ENTRY_POINTS, name=value):
        return value
    raise InvalidValue("one of " + ", ".join(BUILTIN_SAMPLERS)
                       + f", or a sampler registered under {SAMPLER_ENTRY_POINTS}")


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


def _readable_pem(what: str) -> Callable[[str], str | None]:
    def parse(raw: str) -> str | None:
        value = raw.strip()
        if not value:
            return None
        if not os.path.isfile(value) or not os.access(value, os.R_OK):
            raise Unusable(f"{value!r} is invalid (accepted: the path of a readable {what} file (PEM)): it does "
                           "not exist or cannot be read, and the SDK's exporters read the variable themselves, so "
                           "every OTLP export over https fails until it is fixed")
        return value
    return parse


_readable_file = _readable_pem("CA certificate")


def _log_level(raw: str) -> int:
    value = raw.strip().lower()
    if value not in _LEVELS:
        raise InvalidValue("one of " + ", ".join(_LEVELS))
    return _LEVELS[value]


# ---------------------------------------------------------------- the table

_FROM_ENV_NAME = "<from the variable's name>"


@dataclass(frozen=True)
class Setting:
    """One environment variable: where it lands in Settings and how it is read.

    ``file_key``: its key under ``distribution.otel_distro`` in the configuration file;
    by default the field's name for the distro's own ``OTEL_DISTRO_*`` variables and
    None for standard ones (the file's own sections replace those).
    ``live``: whether remote configuration may change it while the service runs.
    """

    env: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    default_text: str
    doc: str
    secret: bool = False
    file_key: str | None = _FROM_ENV_NAME
    live: bool = False

    def __post_init__(self) -> None:
        if self.file_key == _FROM_ENV_NAME:
            object.__setattr__(self, "file_key", self.field if self.env.startswith("OTEL_DISTRO_") else None)


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
    Setting("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "otlp_traces_timeout_ms", _optional_int_between(1, 600_000), None,
            "(OTEL_EXPORTER_OTLP_TIMEOUT)", "Milliseconds one OTLP span export may take, overriding the general one."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "otlp_metrics_timeout_ms", _optional_int_between(1, 600_000),
            None, "(OTEL_EXPORTER_OTLP_TIMEOUT)",
            "Milliseconds one OTLP metric export may take, overriding the general one."),
    Setting("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "otlp_logs_timeout_ms", _optional_int_between(1, 600_000), None,
            "(OTEL_EXPORTER_OTLP_TIMEOUT)", "Milliseconds one OTLP log export may take, overriding the general one."),
    Setting("OTEL_EXPORTER_OTLP_CERTIFICATE", "otlp_certificate", _readable_file, None, "(system CAs)",
            "CA certificate file (PEM) trusted for an https:// Collector; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "otlp_traces_certificate", _readable_file, None,
            "(OTEL_EXPORTER_OTLP_CERTIFICATE)", "CA certificate file (PEM) for spans only; checked at start-up, "
            "read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "otlp_metrics_certificate", _readable_file, None,
            "(OTEL_EXPORTER_OTLP_CERTIFICATE)", "CA certificate file (PEM) for metrics only; checked at start-up, "
            "read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "otlp_logs_certificate", _readable_file, None,
            "(OTEL_EXPORTER_OTLP_CERTIFICATE)", "CA certificate file (PEM) for log records only; checked at start-up, "
            "read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", "otlp_client_certificate", _readable_pem("client certificate"),
            None, "(none)", "Client certificate file (PEM) for mutual TLS with the Collector; checked at start-up, "
            "read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_CLIENT_KEY", "otlp_client_key", _readable_pem("client private key"), None,
            "(none)", "Client private key file (PEM) for mutual TLS with the Collector; checked at start-up, "
            "read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "otlp_traces_client_certificate",
            _readable_pem("client certificate"), None, "(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)",
            "Client certificate file (PEM) for spans only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "otlp_traces_client_key", _readable_pem("client private key"),
            None, "(OTEL_EXPORTER_OTLP_CLIENT_KEY)",
            "Client private key file (PEM) for spans only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "otlp_metrics_client_certificate",
            _readable_pem("client certificate"), None, "(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)",
            "Client certificate file (PEM) for metrics only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "otlp_metrics_client_key", _readable_pem("client private key"),
            None, "(OTEL_EXPORTER_OTLP_CLIENT_KEY)",
            "Client private key file (PEM) for metrics only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", "otlp_logs_client_certificate",
            _readable_pem("client certificate"), None, "(OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE)",
            "Client certificate file (PEM) for log records only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "otlp_logs_client_key", _readable_pem("client private key"),
            None, "(OTEL_EXPORTER_OTLP_CLIENT_KEY)",
            "Client private key file (PEM) for log records only; checked at start-up, read by the SDK."),
    Setting("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "metrics_temporality",
            _one_of("cumulative", "delta", "lowmemory"), "cumulative", "cumulative",
            "Aggregation temporality of OTLP metrics."),
    Setting("OTEL_TRACES_SAMPLER", "sampler", _sampler_name, "parentbased_always_on",
            "parentbased_always_on", "Head sampler: " + ", ".join(BUILTIN_SAMPLERS) + ", or the name of a sampler "
            "registered under the opentelemetry_traces_sampler entry point group (given OTEL_TRACES_SAMPLER_ARG)."),
    Setting("OTEL_TRACES_SAMPLER_ARG", "sampler_arg", _float_between(0.0, 1.0), 1.0, "1.0",
            "Ratio for the traceidratio samplers.", live=True),
    Setting("OTEL_METRIC_EXPORT_TIMEOUT", "metric_export_timeout_ms", _optional_int_between(1, 600_000), None,
            "(the OTLP metrics timeout)", "Milliseconds one periodic metric collection and export may take."),
    Setting("OTEL_BLRP_MAX_QUEUE_SIZE", "log_queue_size", _int_between(1, 10_000_000), 65_536, "65536",
            "Log records waiting for export, at most (more are dropped and counted); the SDK's 2048 drops "
            "records in bursts."),
    Setting("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", "log_export_batch_size", _int_between(1, 10_000_000), 512, "512",
            "Log records per export, at most (no more than OTEL_BLRP_MAX_QUEUE_SIZE)."),
    Setting("OTEL_METRIC_EXPORT_INTERVAL", "metric_export_interval_ms",
            _int_between(100, 86_400_000), 60_000, "60000",
            "Milliseconds between OTLP metric exports."),
    Setting("OTEL_EXPORTER_PROMETHEUS_HOST", "prometheus_host", _host, "127.0.0.1", "127.0.0.1",
            "Address the Prometheus pull endpoint binds (loopback unless you open it)."),
    Setting("OTEL_EXPORTER_PROMETHEUS_PORT", "prometheus_port", _int_between(0, 65535), 9464,
            "9464", "Port of the Prometheus pull endpoint (0 picks a free port)."),
    # Multi-process servers (gunicorn, uvicorn --workers): set by the distro, inherited by the workers.
    Setting("OTEL_DISTRO_PROMETHEUS_WORKERS_DIR", "prometheus_workers_dir", _optional_str, None, "(set by the "
            "distro)", "Where worker processes register with the process serving the Prometheus endpoint; "
            "the distro sets it for its workers, leave it unset.", file_key=None),
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
            "Turn any invalid variable into a start-up failure (exit status 2).", file_key=None),
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
            "Lowest stdlib log level bridged to OpenTelemetry logs.", live=True),
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
    Setting("OTEL_DISTRO_AI_STREAM_USAGE", "ai_stream_usage", _parse_bool, True, "true",
            "Ask streamed OpenAI chat calls for their usage (stream_options.include_usage) when the caller set "
            "no stream_options; the extra usage chunk is not passed on to the caller."),
    Setting("OTEL_DISTRO_AI_BUDGETS_FILE", "ai_budgets_file", _optional_str, None, "(none)",
            "YAML or TOML file of LLM spend budgets (USD per day or month, by cost attribute and model)."),
    Setting("OTEL_DISTRO_AI_CONTENT", "ai_content", _one_of("off", "redacted", "full"), "off", "off",
            "Prompt and completion content on exported GenAI spans, events and logs: off (removed), redacted "
            "(secrets masked) or full; applied whatever the instrumentation captured.", live=True),
    Setting("OTEL_DISTRO_AI_CONTENT_MAX_BYTES", "ai_content_max_bytes", _int_between(16, 10_000_000), 8192,
            "8192", "With OTEL_DISTRO_AI_CONTENT=redacted or full: longest content value kept (UTF-8 bytes)."),
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
            "More attribute/extra key names whose values are redacted, comma-separated.", live=True),
    Setting("OTEL_DISTRO_REDACT_PATTERNS", "redact_patterns", _regex_list, (), "(none)",
            "More regular expressions to redact, comma-separated (commas inside (), [], {} or "
            "written \\, do not split); an invalid one is reported and skipped.", live=True),
    Setting("OTEL_DISTRO_REDACT_EMAILS", "redact_emails", _one_of("mask", "hash", "keep"), "mask",
            "mask", "E-mail addresses: mask (j***@example.com), hash ([email:16 hex digits of SHA-256]) or keep."),
    Setting("OTEL_DISTRO_REDACT_MAX_LENGTH", "redact_max_length", _int_between(256, 10_000_000), 32_768, "32768",
            "Characters of one text value the redaction rules read; the rest (and the word cut) becomes "
            "[TRUNCATED n characters]."),
    # Configuration from a file and from an OpAMP server.
    Setting("OTEL_CONFIG_FILE", "config_file", _optional_str, None, "(none)",
            "Declarative configuration file (YAML or JSON, file_format 1.x): the providers are built from it, "
            "and the distro's settings may sit under distribution.otel_distro (docs/configuration-file.md)."),
    Setting("OTEL_DISTRO_OPAMP_ENDPOINT", "opamp_endpoint", _optional_url, None, "(none)",
            "OpAMP server (HTTP, e.g. http://opamp:4320/v1/opamp): report this process and accept live "
            "settings from it (docs/opamp.md)."),
    Setting("OTEL_DISTRO_OPAMP_HEADERS", "opamp_headers", _key_values, (), "(none)",
            "Headers sent to the OpAMP server as key=value pairs, comma-separated (e.g. authorization).",
            secret=True),
    Setting("OTEL_DISTRO_OPAMP_INTERVAL", "opamp_interval_s", _float_between(0.05, 3600.0), 30.0, "30",
            "Seconds between two polls of the OpAMP server (a change arrives with the next poll)."),
)

# Standard variables outside the table that nothing in the distro's set-up reads (the SDK reads the others:
# the exporters' headers, compression and certificates, OTEL_BSP_*, OTEL_BLRP_SCHEDULE_DELAY and _EXPORT_TIMEOUT,
# the limits, propagators, exemplar filter). Each one set is named on one line at start-up, and by doctor.
NOT_READ: Mapping[str, str] = {
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "the distro detects host, OS, process and container itself",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "only http/protobuf is shipped",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "only http/protobuf is shipped",
    "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL": "only http/protobuf is shipped",
    "OTEL_EXPORTER_OTLP_INSECURE": "a gRPC setting; only http/protobuf is shipped",
    "OTEL_PYTHON_ID_GENERATOR": "the SDK's configurator reads it, not the distro's (random ids)",
    "OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED": "the distro bridges logging itself (OTEL_LOGS_EXPORTER)",
}


def report_not_read(environ: Mapping[str, str] | None = None) -> list[str]:
    """One line for each standard variable set that the distro does not read (written to stderr)."""
    env = os.environ if environ is None else environ
    lines = [f"otel-distro: {name} is set but not read ({why})" for name, why in NOT_READ.items() if env.get(name)]
    for line in lines:
        sys.stderr.write(line + "\n")
    return lines


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
    otlp_traces_timeout_ms: int | None
    otlp_metrics_timeout_ms: int | None
    otlp_logs_timeout_ms: int | None
    otlp_certificate: str | None
    otlp_traces_certificate: str | None
    otlp_metrics_certificate: str | None
    otlp_logs_certificate: str | None
    otlp_client_certificate: str | None
    otlp_client_key: str | None
    otlp_traces_client_certificate: str | None
    otlp_traces_client_key: str | None
    otlp_metrics_client_certificate: str | None
    otlp_metrics_client_key: str | None
    otlp_logs_client_certificate: str | None
    otlp_logs_client_key: str | None
    metrics_temporality: str
    sampler: str
    sampler_arg: float
    metric_export_timeout_ms: int | None
    log_queue_size: int
    log_export_batch_size: int
    metric_export_interval_ms: int
    prometheus_host: str
    prometheus_port: int
    prometheus_workers_dir: str | None
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
    ai_stream_usage: bool
    ai_budgets_file: str | None
    ai_content: str
    ai_content_max_bytes: int
    business_metrics_file: str | None
    metric_attribute_value_limit: int
    export_error_interval_s: float
    log_format: str
    redact: bool
    redact_keys: tuple[str, ...]
    redact_patterns: tuple[str, ...]
    redact_emails: str
    redact_max_length: int
    config_file: str | None
    opamp_endpoint: str | None
    opamp_headers: tuple[tuple[str, str], ...]
    opamp_interval_s: float
    # Bookkeeping, not configuration.
    program_name: str = "python"
    problems: tuple[Problem, ...] = ()
    sources: Mapping[str, str] = field(default_factory=dict)
    # The loaded OTEL_CONFIG_FILE (otel_distro.config_file.FileConfig), when it is used.
    declarative: Any = None

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

    def signal_timeout_s(self, signal: str) -> float:
        """Seconds one OTLP export of ``signal`` may take: its own variable, else the general one."""
        own = getattr(self, f"otlp_{signal}_timeout_ms")
        return (own or self.otlp_timeout_ms) / 1000

    def signal_endpoint(self, signal: str) -> str:
        """The OTLP/HTTP URL for one signal: its own variable, else base + /v1/<signal>."""
        own = getattr(self, f"otlp_{signal}_endpoint")
        return own or f"{self.otlp_endpoint}/v1/{signal}"

    def with_overrides(self, *, report: bool = True, **overrides: Any) -> Settings:
        """These settings with ``configure()``'s keyword arguments, each read by its variable's parser.

        An argument is written as the variable would be (``"prometheus"`` or ``("otlp", "prometheus")``, a number,
        a bool, key=value pairs as a mapping) and checked as the variable is: an invalid one is reported on one
        line naming it and ignored, or ends start-up under OTEL_DISTRO_STRICT (exit 2).
        """
        unknown = sorted(set(overrides) - _FIELD_NAMES)
        if unknown:
            raise TypeError(f"unknown setting(s) for otel_distro.configure(): {', '.join(unknown)}")
        values: dict[str, Any] = {}
        problems: list[Problem] = []
        sources = dict(self.sources)
        for name, given in overrides.items():
            setting = _BY_FIELD[name]
            try:
                values[name] = _override(setting, given)
                sources[name] = "configure()"
            except InvalidParts as err:
                values[name] = err.usable
                sources[name] = f"configure() ({err.source_note})"
                problems.extend(Problem(f"configure() argument {name}", "", "", "", detail=d) for d in err.rejected)
            except InvalidValue as err:
                problems.append(Problem(f"configure() argument {name}", _shown(setting, given), str(err),
                                        f"{getattr(self, name)!r} ({sources.get(name, 'default')})"))
        chosen = dataclasses.replace(self, **values, problems=self.problems + tuple(problems), sources=sources)
        if report and problems:
            for problem in problems:
                sys.stderr.write(problem.message + "\n")
            sys.stderr.flush()
            if chosen.strict:
                raise StrictModeError(2)
        return chosen


_FIELD_NAMES = frozenset(s.field for s in TABLE)
_BY_FIELD = {s.field: s for s in TABLE}


def _override(setting: Setting, given: Any) -> Any:
    """A ``configure()`` argument, read by the setting's own parser from the text its variable would hold."""
    if given is None and setting.default is None:
        return None
    if isinstance(given, Mapping):
        given = tuple(given.items())
    if isinstance(given, (list, tuple, set, frozenset)):
        if not given and isinstance(setting.default, tuple):
            return ()
        items = [f"{i[0]}={i[1]}" if isinstance(i, tuple) and len(i) == 2 else i for i in given]
        if not all(isinstance(i, str) for i in items):
            raise InvalidValue(f"text, as {setting.env} holds it")
        given = ",".join(items)
    elif isinstance(given, bool):
        given = "true" if given else "false"
    elif isinstance(given, (int, float)):
        given = repr(given)
    elif not isinstance(given, str):
        raise InvalidValue(f"text, a number or a list, as {setting.env} holds it")
    if not given.strip():
        raise InvalidValue(f"a non-empty value, as {setting.env} holds it")
    return setting.parse(given)


def _shown(setting: Setting, given: Any) -> str:
    return "<hidden>" if setting.secret else str(given)
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


def load(environ: Mapping[str, str] | None = None, *, report: bool = True, use_file: bool = True,
         config_file: str | None = None) -> Settings:
    """Read the table from ``environ`` (default: the process environment), then OTEL_CONFIG_FILE.

    ``config_file`` (``configure(config_file=...)``) is read instead of the variable's file.

    Each invalid value is reported on one stderr line (when ``report``) and
    replaced by its default; with OTEL_DISTRO_STRICT=true the first report is
    followed by ``SystemExit(2)``. A configuration file that cannot be used is
    one such line, and the environment's settings apply (``use_file=False``
    skips the file). Its ``${VAR}`` references are resolved in the process
    environment, as the specification says.
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
            sources[setting.field] = f"environment ({err.source_note})"
        except InvalidValue as err:
            shown = "<hidden>" if setting.secret else raw
            problems.append(Problem(setting.env, shown, str(err), setting.default_text))
            sources[setting.field] = "default (invalid value ignored)"
    if config_file is not None:
        values["config_file"], sources["config_file"] = config_file, "configure()"
    declarative = _read_file(values["config_file"], values, sources, problems) \
        if use_file and values["config_file"] else None
    _check_together(values, problems)
    settings = Settings(**values, program_name=_program_name(sys.argv),
                        problems=tuple(problems), sources=sources, declarative=declarative)
    if report:
        report_not_read(env)
        for problem in problems:
            sys.stderr.write(problem.message + "\n")
        sys.stderr.flush()
        if problems and settings.strict:
            raise StrictModeError(2)
    return settings


def _check_together(values: dict[str, Any], problems: list[Problem]) -> None:
    """What no single variable's parser can check: values that must agree with each other."""
    batch, queue = values["log_export_batch_size"], values["log_queue_size"]
    if batch > queue:
        problems.append(Problem("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", str(batch),
                                f"no more than OTEL_BLRP_MAX_QUEUE_SIZE ({queue})", str(queue)))
        values["log_export_batch_size"] = queue


_BY_FILE_KEY = {s.file_key: s for s in TABLE if s.file_key}
FILE_REPLACED = "not used: OTEL_CONFIG_FILE builds the providers"
# Variables without a file key that are read with a file too: the downward-API ones (the file's resource is laid
# over their attributes, otel_distro.resource) and the instrumentations' (the file's instrumentation section is not
# read: the instrumentations are chosen and set up as without a file).
_KEPT_WITH_FILE = frozenset({"OTEL_CONFIG_FILE", "OTEL_DISTRO_STRICT"})
_KEPT_WITH_FILE_PREFIXES = ("K8S_", "OTEL_INSTRUMENTATION_")


def _read_file(path: str, values: dict[str, Any], sources: dict[str, str], problems: list[Problem]) -> Any:
    """Load the configuration file; its distro section's values win over the variables'. None if unusable."""
    from otel_distro import config_file

    try:
        loaded = config_file.load(path)
    except config_file.ConfigFileError as err:
        problems.append(Problem("OTEL_CONFIG_FILE", path, "", "",
                                detail=f"{path} is not a valid configuration file: {err}; "
                                       "using the environment's settings"))
        sources["config_file"] = "environment (file not used)"
        return None
    for key, raw in loaded.distro_values.items():
        setting = _BY_FILE_KEY.get(key)
        where = f"{path}: {config_file.DISTRO_SECTION}.{key}"
        if setting is None:
            problems.append(Problem(where, "", "", "", detail=f"unknown setting, ignored (known: "
                                                              f"{', '.join(sorted(_BY_FILE_KEY))})"))
            continue
        if raw is None:  # an unset ${VAR} without default: as if the key were absent
            continue
        texts = config_file.as_setting_texts(raw)
        text = ",".join(texts)
        try:
            values[setting.field] = _parse_file_value(setting, texts)
            sources[setting.field] = "file"
        except InvalidParts as err:
            values[setting.field] = err.usable
            problems.extend(Problem(where, text, "", "", detail=d) for d in err.rejected)
            sources[setting.field] = f"file ({err.source_note})"
        except InvalidValue as err:
            kept = "the environment's value" if sources[setting.field] == "environment" else setting.default_text
            problems.append(Problem(where, "<hidden>" if setting.secret else text, str(err), kept))
    for setting in TABLE:
        if setting.file_key is None and setting.env not in _KEPT_WITH_FILE \
                and not setting.env.startswith(_KEPT_WITH_FILE_PREFIXES):
            sources[setting.field] = f"{sources[setting.field]}, {FILE_REPLACED}"
    # The file's own `disabled` switch replaces OTEL_SDK_DISABLED.
    values["sdk_disabled"] = bool(loaded.model.disabled)
    if loaded.model.disabled is not None:
        sources["sdk_disabled"] = "file"
    return loaded


def _parse_file_value(setting: Setting, texts: list[str]) -> Any:
    """A list in the file is parsed item by item (a pattern's own commas stay in it), then joined."""
    if len(texts) == 1 or not isinstance(setting.default, tuple):
        return setting.parse(",".join(texts))
    parsed, rejected = [], []
    for text in texts:
        try:
            parsed.extend(setting.parse(text))
        except InvalidParts as err:
            parsed.extend(err.usable)
            rejected.extend(err.rejected)
    usable = tuple(dict.fromkeys(parsed))
    if rejected:
        raise InvalidParts(usable, rejected)
    return usable


LIVE_FIELDS = tuple(s.field for s in TABLE if s.live)


def live_values(requested: Mapping[str, Any]) -> dict[str, Any]:
    """The typed values of a remote configuration (keys: field names of live settings; values as in the file).

    Raises InvalidValue naming the first key that is not a live setting or whose value is invalid: a remote
    configuration is taken whole or not at all.
    """
    from otel_distro import config_file

    by_field = {s.field: s for s in TABLE if s.live}
    values: dict[str, Any] = {}
    for key, raw in requested.items():
        setting = by_field.get(key)
        if setting is None:
            raise InvalidValue(f"{key}: not a setting that changes live (these do: {', '.join(LIVE_FIELDS)})")
        texts = config_file.as_setting_texts(raw)
        try:
            values[key] = _parse_file_value(setting, texts)
        except InvalidParts as err:
            raise InvalidValue(f"{key}: {'; '.join(err.rejected)}") from None
        except InvalidValue as err:
            raise InvalidValue(f"{key}={','.join(texts)!r} is invalid (accepted: {err})") from None
    return values


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


def announce_to_children(name: str, value: str | None) -> None:
    """Set (or, with None, remove) a variable of the distro's that processes this one starts will read."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


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
