"""``OTEL_CONFIG_FILE``: the OpenTelemetry declarative configuration, read by ``opentelemetry-configuration``.

The file (YAML or JSON, ``file_format: "1.x"``) is parsed, ``${VAR}`` / ``${VAR:-default}`` substituted and
validated against the configuration schema by that package, never by a parser of ours. Its standard sections
(resource, tracer/meter/logger providers, propagator) build the providers; the distro's own settings may sit in
the schema's extension point for distributions::

    distribution:
      otel_distro:
        log_export_level: warning
        redact_keys: [ssn, iban]

(:mod:`otel_distro.settings` reads that section; its values win over the ``OTEL_DISTRO_*`` variables). What
the distro adds to every pipeline still applies to what the file builds: the redaction wraps each exporter and
the OTLP exporters' connections are dropped in forked children, and the distro's views (seconds-shaped
buckets) follow the file's, each leaving alone the instruments a view of the file selects
(:mod:`otel_distro._sdk_private.declarative`); the file's resource is laid over the distro's own attributes
(:func:`otel_distro.resource.under_file`: the file's win); the configurator adds the GenAI processor and sampler,
the log bridge, process metrics and its fork handling. ``otel_distro.configure(config_file=...)`` reads a file
the same way.

A file that cannot be used raises :class:`ConfigFileError` with a one-line reason; the settings report it and
the service runs on the environment's settings (``OTEL_DISTRO_STRICT=true``: exit status 2).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    from otel_distro.settings import Settings

DISTRIBUTION_NAME = "otel_distro"
DISTRO_SECTION = f"distribution.{DISTRIBUTION_NAME}"
_PACKAGE_LOGGER = "opentelemetry.configuration"


class ConfigFileError(Exception):
    """The file cannot be used; the message is one line saying why."""


@dataclass(frozen=True)
class FileConfig:
    """A loaded, validated configuration file."""

    path: str
    model: Any  # opentelemetry.configuration.OpenTelemetryConfiguration
    distro_values: Mapping[str, Any]


class Built(NamedTuple):
    resource: Resource
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    logger_provider: LoggerProvider


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


@contextlib.contextmanager
def _package_quiet() -> Iterator[None]:
    """The package logs each problem (with a traceback) before raising it: the distro reports it once itself."""
    package = logging.getLogger(_PACKAGE_LOGGER)
    saved = package.level
    package.setLevel(logging.CRITICAL + 1)  # its modules' loggers inherit it
    try:
        yield
    finally:
        package.setLevel(saved)


def load(path: str) -> FileConfig:
    """Read, substitute and validate the file; raise ConfigFileError with a one-line reason."""
    try:
        from opentelemetry.configuration import ConfigurationError, load_config_file
    except ImportError as err:
        raise ConfigFileError(f"opentelemetry-configuration is not installed ({_one_line(err)})") from None
    with _package_quiet():
        try:
            model = load_config_file(path)
        except ConfigurationError as err:
            raise ConfigFileError(_one_line(err)) from None
        except Exception as err:  # whatever else the package lets through: still one line
            raise ConfigFileError(f"{type(err).__name__}: {_one_line(err)}") from None
    distribution = model.distribution or {}
    return FileConfig(path, model, dict(distribution.get(DISTRIBUTION_NAME) or {}))


def as_setting_texts(value: Any) -> list[str]:
    """A file value as the texts its setting's parser reads: one per list item, booleans as true/false."""
    if isinstance(value, (list, tuple)):
        return [text for item in value for text in as_setting_texts(item)]
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, Mapping):
        return [",".join(f"{k}={v}" for k, v in value.items())]
    return [str(value)]


def build(chosen: Settings) -> Built:
    """The providers the file describes, with the distro's redaction and fork safety on their exporters.

    Raises ConfigFileError when the file asks for something that cannot be built (an exporter no package
    provides, an unreachable Prometheus port...).
    """
    from opentelemetry.configuration.file import (
        ConfigurationError,
        configure_propagator,
        create_logger_provider,
        create_meter_provider,
        create_resource,
        create_tracer_provider,
    )

    from otel_distro import forksafe, logs, metrics, redaction
    from otel_distro import resource as resource_
    from otel_distro._sdk_private import declarative

    model = chosen.declarative.model
    redactor = redaction.from_settings(chosen)
    made: list[Any] = []
    with _package_quiet():
        try:
            resource = resource_.under_file(chosen, create_resource(model.resource))
            made.append(create_tracer_provider(model.tracer_provider, resource, model.attribute_limits))
            made.append(create_meter_provider(model.meter_provider, resource))
            made.append(create_logger_provider(model.logger_provider, resource, model.attribute_limits))
            if model.propagator is not None:
                configure_propagator(model.propagator)
        except Exception as err:
            _shut(made)
            shown = _one_line(err) if isinstance(err, ConfigurationError) else f"{type(err).__name__}: {_one_line(err)}"
            raise ConfigFileError(shown) from None
    tracer_provider, meter_provider, logger_provider = made
    try:
        declarative.adopt_tracer_provider(
            tracer_provider, lambda e: redaction.wrap_span_exporter(forksafe.track(e), redactor))
        declarative.adopt_logger_provider(
            logger_provider, lambda e: redaction.wrap_log_exporter(forksafe.track(e), redactor),
            logs.leading_processors(chosen))
        declarative.adopt_meter_provider(
            meter_provider, lambda e: redaction.wrap_metric_exporter(forksafe.track(e), redactor),
            lambda reader: redaction.redact_pull_reader(reader, redactor), metrics.views())
        metrics.quiet_same_name_in_other_scopes()
    except declarative.Unusable as err:
        _shut(made)
        raise ConfigFileError(f"{err}: its exporters could not be given the distro's redaction") from None
    return Built(resource, tracer_provider, meter_provider, logger_provider)


def _shut(providers: list[Any]) -> None:
    for provider in providers:
        try:
            provider.shutdown()
        except Exception:  # already failing: the first error is the one reported
            pass


class Exporter(NamedTuple):
    """One exporter the file declares."""

    section: str  # tracer_provider, meter_provider, logger_provider
    stage: str  # batch, simple, periodic, pull
    name: str  # otlp_http, console, ... or a plugin's name
    endpoint: str | None
    plugin: bool  # a name the schema does not know: an installed package's entry point must provide it


_SECTIONS = (("tracer_provider", "processors"), ("meter_provider", "readers"), ("logger_provider", "processors"))
_STAGES = ("batch", "simple", "periodic", "pull")
_PLUGIN_GROUPS = {"tracer_provider": "opentelemetry_traces_exporter",
                  "meter_provider": "opentelemetry_metrics_exporter",
                  "logger_provider": "opentelemetry_logs_exporter", "pull": "opentelemetry_pull_metric_exporter"}


def _exporter(section: str, stage: str, exporter: Any) -> Exporter:
    for name, value in vars(exporter).items():
        if value is not None and name != "additional_properties":
            return Exporter(section, stage, name, getattr(value, "endpoint", None), plugin=False)
    plugins = getattr(exporter, "additional_properties", None) or {}
    return Exporter(section, stage, ", ".join(plugins) or "?", None, plugin=bool(plugins))


def exporters(loaded: FileConfig) -> list[Exporter]:
    """Every exporter of the file's providers, in the file's order."""
    found = []
    for section_name, items in _SECTIONS:
        section = getattr(loaded.model, section_name)
        for item in (getattr(section, items) or ()) if section is not None else ():
            for stage in _STAGES:
                built = getattr(item, stage, None)
                if built is not None:
                    found.append(_exporter(section_name, stage, built.exporter))
    return found


def missing_plugins(loaded: FileConfig) -> list[Exporter]:
    """Exporters named by the file that no installed package provides: building the file would fail."""
    from importlib.metadata import entry_points

    return [e for e in exporters(loaded) if e.plugin and not entry_points(
        group=_PLUGIN_GROUPS["pull" if e.stage == "pull" else e.section], name=e.name)]


def _pipeline_text(loaded: FileConfig, section_name: str) -> str:
    if getattr(loaded.model, section_name) is None:
        return "(absent: nothing exported)"
    parts = [f"{e.stage} -> {e.name} {e.endpoint}" if e.endpoint else f"{e.stage} -> {e.name}"
             for e in exporters(loaded) if e.section == section_name]
    return "; ".join(parts) or "(no processors)"


def describe(loaded: FileConfig) -> list[tuple[str, str]]:
    """What the file sets up, one (section, summary) pair per standard section: for ``otel-distro doctor``."""
    model = loaded.model
    attributes = {a.name: a.value for a in (model.resource.attributes or ())} if model.resource else {}
    return [
        ("resource", ", ".join(f"{k}={v}" for k, v in attributes.items()) or "(SDK defaults)"),
        *((name, _pipeline_text(loaded, name)) for name, _ in _SECTIONS),
        ("propagator", "(SDK defaults)" if model.propagator is None else
         ",".join(model.propagator.composite_list.split(",")) if model.propagator.composite_list else "composite"),
    ]


def service_name(loaded: FileConfig) -> str | None:
    resource = loaded.model.resource
    for attribute in (resource.attributes or ()) if resource is not None else ():
        if attribute.name == "service.name" and attribute.value:
            return str(attribute.value)
    return None


def exports_logs(loaded: FileConfig) -> bool:
    section = loaded.model.logger_provider
    return bool(section is not None and section.processors)


def reads_metrics(loaded: FileConfig) -> bool:
    section = loaded.model.meter_provider
    return bool(section is not None and section.readers)
