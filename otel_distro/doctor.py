"""``otel-distro doctor``: the effective configuration, and what is wrong with it.

Each check gives a Finding; the report is printed for people or as JSON,
and the exit status is 0 when nothing is wrong, 1 otherwise.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from otel_distro import settings as settings_
from otel_distro.integrations import registry
from otel_distro.redaction.rules import Redactor

# Libraries whose calls a service's traces should show, with the package that instruments them, from the
# integration registry. Transitive helpers (urllib3, jinja2, click ...) are not in it: flagging them would make
# every environment look broken.
SERVICE_LIBRARIES: dict[str, str] = registry.service_libraries()


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    message: str


@dataclass
class Report:
    configuration: list[dict[str, str]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    integrations: list[dict[str, Any]] = field(default_factory=list)
    integrations_observed: bool = False  # the distro loaded them in this process (else: what a service gets)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def as_dict(self) -> dict[str, Any]:
        return {"ok": not self.problems, "configuration": self.configuration,
                "findings": [asdict(f) for f in self.findings], "integrations": self.integrations,
                "integrations_observed": self.integrations_observed}


def _installed(distribution: str) -> bool:
    try:
        version(distribution)
        return True
    except PackageNotFoundError:
        return False


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join("=".join(v) if isinstance(v, tuple) else str(v) for v in value)
    if value is None:
        return ""
    return str(value)


def configuration_rows(chosen: settings_.Settings) -> list[dict[str, str]]:
    rows = []
    for setting in settings_.TABLE:
        value = getattr(chosen, setting.field)
        if setting.field == "log_export_level":
            value = logging.getLevelName(value).lower()
        rows.append({"variable": setting.env,
                     "value": "****" if setting.secret and value else _shown(value),
                     "source": chosen.sources.get(setting.field, "default")})
    if chosen.declarative is not None:
        from otel_distro import config_file

        for section, summary in config_file.describe(chosen.declarative):
            rows.append({"variable": section, "value": summary, "source": f"file {chosen.declarative.path}"})
    for name, value in settings_.other_otel_variables().items():
        not_read = settings_.NOT_READ.get(name)
        rows.append({"variable": name, "value": value,
                     "source": f"environment (not read: {not_read})" if not_read else "environment (read by the SDK)"})
    return rows


def _variable_problems(chosen: settings_.Settings) -> list[settings_.Problem]:
    """The problems check_variables reports: a refused configuration file is check_config_file's."""
    return [p for p in chosen.problems if not (p.env == "OTEL_CONFIG_FILE" and chosen.declarative is None)]


def check_variables(chosen: settings_.Settings) -> Iterable[Finding]:
    problems = _variable_problems(chosen)
    if not problems:
        yield Finding("variables", True, "every variable is valid")
    for problem in problems:
        yield Finding("variables", False, problem.message.removeprefix("otel-distro: "))


def check_config_file(chosen: settings_.Settings) -> Iterable[Finding]:
    """Whether the configuration file is used, and where it sends telemetry."""
    if not chosen.config_file:
        return
    if chosen.declarative is None:
        refused = next((p.detail for p in chosen.problems if p.env == "OTEL_CONFIG_FILE"), "")
        yield Finding("config file", False, f"refused: {refused}")
        return
    from otel_distro import config_file

    loaded = chosen.declarative
    missing = config_file.missing_plugins(loaded)
    for exporter in missing:
        yield Finding("config file", False, f"{loaded.path}: {exporter.section} names the exporter "
                                            f"{exporter.name!r}, which no installed package provides: the service "
                                            "will refuse the file and run on the environment's settings")
    if not missing:
        sent = [f"{e.section.removesuffix('_provider')} -> {e.name}" + (f" {e.endpoint}" if e.endpoint else "")
                for e in config_file.exporters(loaded)]
        yield Finding("config file", True, f"{loaded.path} loaded; exporters: {'; '.join(sent) or 'none'}")


def check_service_name(chosen: settings_.Settings) -> Iterable[Finding]:
    if chosen.declarative is not None:
        from otel_distro import config_file

        if config_file.service_name(chosen.declarative):
            yield Finding("service.name", True, "service.name is set in the configuration file")
        else:
            yield Finding("service.name", False, f"{chosen.declarative.path} sets no service.name resource "
                                                 "attribute: telemetry will say unknown_service")
        return
    if chosen.service_name or dict(chosen.resource_attributes).get("service.name"):
        yield Finding("service.name", True, "service.name is set")
    else:
        yield Finding("service.name", False,
                      f"OTEL_SERVICE_NAME is not set: telemetry will say {chosen.program_name!r}")


def probe_otlp(endpoint: str, timeout: float) -> tuple[bool, str]:
    """Send one test span to ``endpoint``; say what happened."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    captured = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "otel-distro-doctor"}),
                              shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(captured))
    provider.get_tracer("otel-distro-doctor").start_span("otel-distro doctor probe").end()
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=timeout)
    quiet = logging.getLogger("opentelemetry.exporter")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # the probe reports; the exporter need not
    try:
        result = exporter.export(captured.get_finished_spans())
    except Exception as err:
        return False, f"{type(err).__name__}: {err}"
    finally:
        quiet.setLevel(level)
        exporter.shutdown()
    if result is SpanExportResult.SUCCESS:
        return True, f"a test span was accepted by {endpoint}"
    return False, f"a test span could not be delivered to {endpoint} within {timeout:g}s"


def _traces_endpoints(chosen: settings_.Settings) -> list[str]:
    """Where spans go over OTLP/HTTP: the configuration file's exporters when it is used, else the variables'."""
    if chosen.declarative is not None:
        from otel_distro import config_file

        return list(dict.fromkeys(e.endpoint for e in config_file.exporters(chosen.declarative)
                                  if e.section == "tracer_provider" and e.name == "otlp_http" and e.endpoint))
    exporters = chosen.traces_exporter + chosen.metrics_exporter + chosen.logs_exporter
    return [chosen.signal_endpoint("traces")] if "otlp" in exporters else []


def check_otlp(chosen: settings_.Settings, timeout: float) -> Iterable[Finding]:
    for endpoint in _traces_endpoints(chosen):
        ok, message = probe_otlp(endpoint, timeout)
        yield Finding("otlp endpoint", ok, message)


def check_opamp(chosen: settings_.Settings, installed: Callable[[str], bool] = _installed) -> Iterable[Finding]:
    if not chosen.opamp_endpoint:
        return
    if not installed("opentelemetry-opamp-client"):
        yield Finding("opamp", False, "OTEL_DISTRO_OPAMP_ENDPOINT is set but the OpAMP messages are not installed: "
                                      "pip install 'otel-distro[opamp]'")
        return
    yield Finding("opamp", True, f"reports to {chosen.opamp_endpoint} every {chosen.opamp_interval_s:g} s; "
                                 f"changeable live: {', '.join(settings_.LIVE_FIELDS)}")


def _opamp_failure(err: BaseException, timeout: float) -> str:
    import urllib.error

    if isinstance(err, urllib.error.HTTPError):
        return f"reachable, but answers HTTP {err.code} {err.reason}: not an OpAMP endpoint?"
    if isinstance(err, urllib.error.URLError) and not isinstance(err.reason, TimeoutError):
        return f"not reachable ({err.reason})"
    if isinstance(err, (TimeoutError, urllib.error.URLError)):
        return f"no answer within {timeout:g} s"
    if type(err).__name__ == "DecodeError":  # google.protobuf.message.DecodeError
        return "reachable, but its answer is no OpAMP ServerToAgent message"
    return f"{type(err).__name__}: {err}"


def check_opamp_server(chosen: settings_.Settings, timeout: float,
                       installed: Callable[[str], bool] = _installed) -> Iterable[Finding]:
    """One OpAMP exchange with the server (an agent that arrives and leaves at once), bounded by ``timeout``."""
    if not chosen.opamp_endpoint or not installed("opentelemetry-opamp-client"):
        return
    from otel_distro import remote

    try:
        took = remote.probe(chosen.opamp_endpoint, dict(chosen.opamp_headers), timeout)
    except Exception as err:
        yield Finding("opamp server", False, f"{chosen.opamp_endpoint}: {_opamp_failure(err, timeout)}")
        return
    yield Finding("opamp server", True, f"{chosen.opamp_endpoint} answers as an OpAMP server ({took:.2f} s)")


def check_prometheus_port(chosen: settings_.Settings) -> Iterable[Finding]:
    if "prometheus" not in chosen.metrics_exporter:
        return
    address = (chosen.prometheus_host, chosen.prometheus_port)
    with socket.socket() as probe:
        try:
            probe.bind(address)
        except OSError as err:
            yield Finding("prometheus port", False,
                          f"{address[0]}:{address[1]} is already taken ({err.strerror}): "
                          "set OTEL_EXPORTER_PROMETHEUS_PORT")
            return
    yield Finding("prometheus port", True, f"{address[0]}:{address[1]} is free")


def check_instrumentations(installed: Callable[[str], bool] = _installed) -> Iterable[Finding]:
    missing = [(lib, inst) for lib, inst in SERVICE_LIBRARIES.items()
               if installed(lib) and not installed(inst)]
    if not missing:
        yield Finding("instrumentations", True, "every installed service library is instrumented")
    for library, instrumentation in missing:
        extra = registry.extra_for(instrumentation)
        install = f"pip install 'otel-distro[{extra}]'" if extra else f"pip install {instrumentation}"
        yield Finding("instrumentations", False,
                      f"{library} is installed but {instrumentation} is not: its calls will not "
                      f"be traced ({install})")


def check_instrumentations_load() -> Iterable[Finding]:
    """Instrumentations that refuse the installed library version: opentelemetry-instrument skips them.

    The same check the loader makes (the instrumentation's ``instruments`` requirements), so what is
    named here is what failed to load in the service (its stderr says so too).
    """
    from importlib.metadata import entry_points

    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    for entry_point in entry_points(group="opentelemetry_instrumentor"):
        try:
            conflict = get_dist_dependency_conflicts(entry_point.dist) if entry_point.dist else None
        except Exception as err:  # a broken distribution's metadata: say so, go on
            yield Finding("instrumentations", False, f"{entry_point.name}: its requirements cannot be read ({err})")
            continue
        if conflict is not None and getattr(conflict, "found", None):
            yield Finding("instrumentations", False,
                          f'{entry_point.name} only instruments "{conflict.required}", but the installed '
                          f'"{conflict.found}" falls outside that range. It fails to load: upgrade '
                          f"{entry_point.dist.name} or install a version its range admits.")


def integration_rows() -> tuple[list[dict[str, Any]], bool]:
    """Each integration of the registry with its state (installed, instrumented, refused and why, waiting for the
    first import ...), and whether those are this process's outcomes."""
    from otel_distro.integrations import states

    disabled = settings_.other_otel_variables().get("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "")
    rows = [asdict(state) for state in states.states(disabled=[n.strip() for n in disabled.split(",") if n.strip()])]
    return rows, registry.outcomes.observed


def render_integrations(report: Report) -> list[str]:
    """The integrations section of the text report: installed ones one per line, the others on one line."""
    where = ("in this process" if report.integrations_observed else
             "what a service under opentelemetry-instrument gets; `opentelemetry-instrument otel-distro doctor "
             "--app MODULE` shows them applied")
    lines = [f"Integrations ({where}):"]
    absent = [row["name"] for row in report.integrations if row["state"] == "not installed"]
    for row in report.integrations:
        if row["state"] == "not installed":
            continue
        about = f"{row['library'] or '-'}; {row['instrumentation']}"
        detail = f": {row['detail']}" if row["detail"] else ""
        lines.append(f"  {row['name']}: {row['state']} ({about}){detail}")
    if absent:
        lines.append(f"  not installed: {', '.join(absent)}")
    return lines


def _is_opentelemetry_handler(handler: logging.Handler) -> bool:
    from opentelemetry.sdk._logs import LoggingHandler

    from otel_distro.logs.bridge import BridgeHandler

    return isinstance(handler, (LoggingHandler, BridgeHandler))


def _handler_target(handler: logging.Handler) -> tuple[str, Any] | None:
    if isinstance(handler, logging.FileHandler):
        return ("file", handler.baseFilename)
    if isinstance(handler, logging.StreamHandler):
        return ("stream", id(handler.stream))
    if _is_opentelemetry_handler(handler):
        return ("opentelemetry", None)
    return None


def check_logging_handlers(root: logging.Logger | None = None) -> Iterable[Finding]:
    """Two handlers on the root logger writing to one place print every line twice."""
    logger = root or logging.getLogger()
    seen: dict[tuple[str, Any], int] = {}
    for handler in logger.handlers:
        target = _handler_target(handler)
        if target is not None:
            seen[target] = seen.get(target, 0) + 1
    doubled = [t for t, n in seen.items() if n > 1]
    if not doubled:
        yield Finding("logging handlers", True, "no logging handler is installed twice")
    for kind, _ in doubled:
        where = {"stream": "the same stream", "file": "the same file",
                 "opentelemetry": "OpenTelemetry"}[kind]
        yield Finding("logging handlers", False,
                      f"the root logger has {seen[(kind, _)]} handlers writing to {where}: "
                      "every record is emitted more than once")


def diagnose(chosen: settings_.Settings | None = None, *, app_module: str | None = None,
             probe_timeout: float = 2.0) -> Report:
    chosen = chosen or settings_.load(report=False)
    report = Report(configuration=configuration_rows(chosen))
    if app_module:
        try:
            importlib.import_module(app_module)
        except Exception as err:
            report.findings.append(Finding("app import", False,
                                           f"importing {app_module} failed: {type(err).__name__}: {err}"))
    for check in (check_variables(chosen), check_config_file(chosen), check_service_name(chosen),
                  check_otlp(chosen, probe_timeout), check_opamp(chosen), check_opamp_server(chosen, probe_timeout),
                  check_prometheus_port(chosen),
                  check_instrumentations(), check_instrumentations_load(), check_logging_handlers()):
        report.findings.extend(check)
    report.integrations, report.integrations_observed = integration_rows()
    return _masked(report, Redactor(chosen.redact_keys, chosen.redact_patterns, chosen.redact_emails))


def _masked(report: Report, rules: Redactor) -> Report:
    """The report with secrets masked (an endpoint's password, a resource attribute's token): it gets pasted."""
    configuration = [{**row, "value": str(rules.value(row["variable"], row["value"])) if row["value"] else ""}
                     for row in report.configuration]
    findings = [Finding(f.check, f.ok, rules.text(f.message)) for f in report.findings]
    return Report(configuration=configuration, findings=findings, integrations=report.integrations,
                  integrations_observed=report.integrations_observed)


def render(report: Report) -> str:
    lines = ["Effective configuration:"]
    width = max(len(r["variable"]) for r in report.configuration)
    for row in report.configuration:
        lines.append(f"  {row['variable'].ljust(width)}  {row['value'] or '-'}  ({row['source']})")
    lines.append("")
    lines.extend(render_integrations(report))
    lines.append("")
    lines.append("Checks:")
    for finding in report.findings:
        lines.append(f"  [{'ok' if finding.ok else 'PROBLEM'}] {finding.check}: {finding.message}")
    problems = len(report.problems)
    lines.append("")
    lines.append("No problems found." if not problems else f"{problems} problem(s) found.")
    return "\n".join(lines)

