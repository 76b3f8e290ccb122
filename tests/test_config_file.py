"""OTEL_CONFIG_FILE: the providers come from the declarative file; the distro's settings may sit in it too.

Unit tests read files through settings.load(); the service tests start tests/apps/config_app.py under
opentelemetry-instrument with a file that points every signal at the test OTLP receiver.
"""

from __future__ import annotations

import logging
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from otel_distro import settings
from tests.conftest import BIN, free_port, http_get, telemetry_env

GOOD = """\
file_format: "1.0"
resource:
  attributes:
    - name: service.name
      value: ${CFG_SERVICE:-from-file}
tracer_provider:
  processors:
    - batch:
        schedule_delay: 100
        exporter:
          otlp_http:
            endpoint: {endpoint}/v1/traces
meter_provider:
  readers:
    - periodic:
        interval: 300
        exporter:
          otlp_http:
            endpoint: {endpoint}/v1/metrics
logger_provider:
  processors:
    - batch:
        schedule_delay: 100
        exporter:
          otlp_http:
            endpoint: {endpoint}/v1/logs
distribution:
  otel_distro:
    log_export_level: warning
    redact_keys: [ssn]
"""


def _write(tmp_path: Path, text: str, name: str = "otel.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- reading the file


def test_distro_section_wins_over_the_variables_which_win_over_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9"))
    loaded = settings.load({"OTEL_CONFIG_FILE": path, "OTEL_DISTRO_LOG_EXPORT_LEVEL": "error",
                            "OTEL_DISTRO_REDACT_EMAILS": "hash"}, report=False)
    assert loaded.log_export_level == logging.WARNING and loaded.sources["log_export_level"] == "file"
    assert loaded.redact_keys == ("ssn",) and loaded.sources["redact_keys"] == "file"
    assert loaded.redact_emails == "hash" and loaded.sources["redact_emails"] == "environment"
    assert loaded.shutdown_timeout_s == 5.0 and loaded.sources["shutdown_timeout_s"] == "default"
    assert loaded.problems == ()


def test_configure_names_the_file_over_the_variable_and_its_other_arguments_win_over_the_file(tmp_path: Path) -> None:
    named = _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9"), "named.yaml")
    other = _write(tmp_path, 'file_format: "1.0"\ndistribution:\n  otel_distro:\n    redact_keys: [iban]\n')
    loaded = settings.load({"OTEL_CONFIG_FILE": other}, report=False, config_file=named)
    assert (loaded.config_file, loaded.sources["config_file"]) == (named, "configure()")
    assert loaded.declarative.path == named and loaded.redact_keys == ("ssn",)
    overridden = loaded.with_overrides(log_export_level="error")
    assert (overridden.log_export_level, overridden.sources["log_export_level"]) == (logging.ERROR, "configure()")


def test_the_downward_api_and_instrumentation_variables_are_read_with_a_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9"))
    loaded = settings.load({"OTEL_CONFIG_FILE": path, "K8S_POD_NAME": "shop-7d9",
                            "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": "x-tenant"}, report=False)
    assert (loaded.k8s_pod_name, loaded.sources["k8s_pod_name"]) == ("shop-7d9", "environment")
    assert loaded.capture_request_headers == ("x-tenant",)
    assert loaded.sources["capture_request_headers"] == "environment"


def test_standard_variables_are_marked_unused_when_the_file_builds_the_providers(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9"))
    loaded = settings.load({"OTEL_CONFIG_FILE": path, "OTEL_TRACES_SAMPLER_ARG": "0.5"}, report=False)
    assert loaded.sources["sampler_arg"] == f"environment, {settings.FILE_REPLACED}"
    assert loaded.sources["traces_exporter"] == f"default, {settings.FILE_REPLACED}"
    assert loaded.sources["config_file"] == "environment"


def test_variables_are_substituted_as_the_specification_says(tmp_path: Path, monkeypatch) -> None:
    text = ('file_format: "1.0"\ndistribution:\n  otel_distro:\n'
            '    shutdown_timeout_s: ${CFG_TIMEOUT}\n    log_format: ${CFG_UNSET:-json}\n'
            '    environment: ${CFG_NOT_SET_AT_ALL}\n')
    monkeypatch.setenv("CFG_TIMEOUT", "2.5")
    monkeypatch.delenv("CFG_UNSET", raising=False)
    monkeypatch.delenv("CFG_NOT_SET_AT_ALL", raising=False)
    loaded = settings.load({"OTEL_CONFIG_FILE": _write(tmp_path, text), "OTEL_DISTRO_ENVIRONMENT": "staging"},
                           report=False)
    assert loaded.shutdown_timeout_s == 2.5
    assert loaded.log_format == "json"
    # An unset variable without a default is null: as if the key were absent.
    assert loaded.environment == "staging" and loaded.sources["environment"] == "environment"


def test_a_bad_value_in_the_file_is_one_line_and_the_variable_applies(tmp_path: Path, capsys) -> None:
    text = 'file_format: "1.0"\ndistribution:\n  otel_distro:\n    log_export_level: loud\n    colour: red\n'
    path = _write(tmp_path, text)
    loaded = settings.load({"OTEL_CONFIG_FILE": path, "OTEL_DISTRO_LOG_EXPORT_LEVEL": "error"})
    assert loaded.log_export_level == logging.ERROR
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"otel-distro: {path}: distribution.otel_distro.log_export_level='loud' is invalid (accepted: one of "
        "debug, info, warning, error, critical); using the environment's value",
        f"otel-distro: {path}: distribution.otel_distro.colour: unknown setting, ignored (known: "
        + ", ".join(sorted(s.file_key for s in settings.TABLE if s.file_key)) + ")",
    ]


BROKEN = {
    "yaml error": ('file_format: "1.0"\ntracer_provider: [unclosed\n', "Failed to parse YAML"),
    "schema error": ('file_format: "1.0"\ntracer_provider:\n  processors: 3\n', "does not match schema"),
    "wrong format": ('file_format: "7.0"\n', "Unsupported file_format '7.0'"),
    "not a mapping": ("- just\n- a list\n", "must be a mapping"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_file_that_does_not_validate_is_one_line_and_the_environment_applies(case: str, tmp_path: Path,
                                                                                capsys) -> None:
    text, reason = BROKEN[case]
    path = _write(tmp_path, text)
    loaded = settings.load({"OTEL_CONFIG_FILE": path, "OTEL_DISTRO_LOG_EXPORT_LEVEL": "error",
                            "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"otel-distro: OTEL_CONFIG_FILE: {path} is not a valid configuration file: ")
    assert reason in lines[0] and lines[0].endswith("; using the environment's settings")
    assert loaded.declarative is None
    assert (loaded.log_export_level, loaded.sampler_arg) == (logging.ERROR, 0.5)
    assert loaded.sources["sampler_arg"] == "environment"


def test_a_missing_file_is_one_line(tmp_path: Path, capsys) -> None:
    path = str(tmp_path / "nowhere.yaml")
    assert settings.load({"OTEL_CONFIG_FILE": path}).declarative is None
    assert capsys.readouterr().err == (f"otel-distro: OTEL_CONFIG_FILE: {path} is not a valid configuration file: "
                                       f"Configuration file not found: {path}; using the environment's settings\n")


def test_strict_mode_refuses_a_file_that_does_not_validate(tmp_path: Path, capsys) -> None:
    path = _write(tmp_path, BROKEN["schema error"][0])
    with pytest.raises(SystemExit) as stopped:
        settings.load({"OTEL_CONFIG_FILE": path, "OTEL_DISTRO_STRICT": "true"})
    assert stopped.value.code == 2
    assert f"OTEL_CONFIG_FILE: {path} is not a valid configuration file" in capsys.readouterr().err


def test_without_the_variable_nothing_changes() -> None:
    loaded = settings.load({"OTEL_TRACES_SAMPLER_ARG": "0.5"}, report=False)
    assert loaded.declarative is None and loaded.config_file is None
    assert loaded.sources["sampler_arg"] == "environment"
    assert not any(settings.FILE_REPLACED in source for source in loaded.sources.values())


def test_doctor_shows_each_value_with_where_it_came_from(tmp_path: Path) -> None:
    from otel_distro import doctor

    path = _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9"))
    chosen = settings.load({"OTEL_CONFIG_FILE": path, "OTEL_DISTRO_REDACT_EMAILS": "hash"}, report=False)
    rows = {row["variable"]: row for row in doctor.configuration_rows(chosen)}
    assert (rows["OTEL_DISTRO_LOG_EXPORT_LEVEL"]["value"], rows["OTEL_DISTRO_LOG_EXPORT_LEVEL"]["source"]) \
        == ("warning", "file")
    assert rows["OTEL_DISTRO_REDACT_EMAILS"]["source"] == "environment"
    assert rows["OTEL_DISTRO_SHUTDOWN_TIMEOUT"]["source"] == "default"
    assert rows["tracer_provider"] == {"variable": "tracer_provider", "source": f"file {path}",
                                       "value": "batch -> otlp_http http://127.0.0.1:9/v1/traces"}
    assert rows["resource"]["value"] == "service.name=from-file"
    names = [f.message for f in doctor.check_service_name(chosen)]
    assert names == ["service.name is set in the configuration file"]


def test_when_the_file_cannot_be_built_configure_arguments_still_apply(tmp_path: Path, monkeypatch) -> None:
    from otel_distro import configurator

    monkeypatch.setenv("OTEL_CONFIG_FILE", _write(tmp_path, GOOD.replace("{endpoint}", "http://127.0.0.1:9")))
    monkeypatch.setenv("OTEL_DISTRO_SHUTDOWN_TIMEOUT", "2")
    chosen = settings.load(report=False).with_overrides(log_export_level="error")
    assert chosen.declarative is not None and chosen.redact_keys == ("ssn",)
    fallback = configurator._settings_without_file(chosen)
    assert fallback.declarative is None and fallback.redact_keys == ()  # the file's values are gone
    assert (fallback.log_export_level, fallback.sources["log_export_level"]) == (logging.ERROR, "configure()")
    assert (fallback.shutdown_timeout_s, fallback.sources["shutdown_timeout_s"]) == (2.0, "environment")


# ---------------------------------------------------------------- a real service


def start_config_app(start_service, env: dict[str, str]):
    """tests/apps/config_app.py under opentelemetry-instrument, ready; (service, base URL)."""
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "tests.apps.config_app:app", "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning"], env)
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    return service, base


@pytest.mark.integration
def test_the_file_drives_every_signal_with_redaction_and_genai_cost(receiver, start_service, tmp_path) -> None:
    path = _write(tmp_path, GOOD.replace("{endpoint}", receiver.endpoint))
    # The variables name another receiver (port 9, nothing listens): the file's endpoints must win.
    env = telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path, OTEL_SERVICE_NAME="from-env",
                        CFG_SERVICE="configured")
    service, base = start_config_app(start_service, env)
    assert http_get(base + "/emit?tag=one") == 200
    receiver.wait_for(lambda: any(s.name == "one-9" for s in receiver.spans()), what="the app's spans")
    receiver.wait_for(lambda: any("warning one" in str(r.body) for r in receiver.logs()), what="the warning")
    receiver.wait_for(lambda: receiver.metric("gen_ai.client.cost"), what="the GenAI cost metric")
    span = next(s for s in receiver.spans() if s.name == "one-0")
    assert span.resource["service.name"] == "configured"
    assert span.attributes["password"] == "[REDACTED]"  # the distro's own rules
    assert span.attributes["ssn"] == "[REDACTED]"  # redact_keys from the file's distro section
    warning = next(r for r in receiver.logs() if "warning one" in str(r.body))
    assert "hunter2" not in str(warning.body)
    # log_export_level: warning (from the file): the info record is not exported.
    assert not any("info one" in str(r.body) for r in receiver.logs())
    # SpanKind.SERVER: the lean middleware's one span, ended after the response
    servers = receiver.wait_for(lambda: [s.name for s in receiver.spans() if s.kind == 2], what="the server span")
    assert servers == ["GET /emit"]
    chat = next(s for s in receiver.spans() if s.name == "chat one")
    assert "gen_ai.input.messages" not in chat.attributes  # the GenAI content policy (off by default)
    assert chat.attributes["otel_distro.gen_ai.content"] == "removed"
    cost = receiver.metric("gen_ai.client.cost")[-1]
    assert sum(p.value or p.sum or 0 for p in cost.points) > 0
    assert receiver.metric("process.cpu.time"), "the distro's process metrics go through the file's reader"
    assert "OTEL_CONFIG_FILE" not in service.output() and "is invalid" not in service.output()


@pytest.mark.integration
def test_without_the_file_the_same_service_follows_the_variables(receiver, start_service) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="from-env", OTEL_DISTRO_REDACT_KEYS="ssn")
    _, base = start_config_app(start_service, env)
    assert http_get(base + "/emit?tag=two") == 200
    receiver.wait_for(lambda: any(s.name == "two-9" for s in receiver.spans()), what="the app's spans")
    receiver.wait_for(lambda: any("info two" in str(r.body) for r in receiver.logs()), what="the info record")
    span = next(s for s in receiver.spans() if s.name == "two-0")
    assert span.resource["service.name"] == "from-env"
    assert (span.attributes["password"], span.attributes["ssn"]) == ("[REDACTED]", "[REDACTED]")


WITH_VIEW_AND_RESOURCE = GOOD.replace("""      value: ${CFG_SERVICE:-from-file}
""", """      value: ${CFG_SERVICE:-from-file}
    - name: k8s.namespace.name
      value: namespace-from-file
""").replace("""            endpoint: {endpoint}/v1/metrics
""", """            endpoint: {endpoint}/v1/metrics
  views:
    - selector:
        instrument_name: config_app.queue.wait
      stream:
        aggregation:
          explicit_bucket_histogram:
            boundaries: [1, 2, 3]
""")


@pytest.mark.integration
def test_the_files_providers_get_the_distros_buckets_and_resource_and_the_file_wins(receiver, start_service,
                                                                                   tmp_path) -> None:
    from otel_distro.metrics import SECONDS_BUCKETS
    from otel_distro.version import __version__

    path = _write(tmp_path, WITH_VIEW_AND_RESOURCE.replace("{endpoint}", receiver.endpoint))
    env = telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path, K8S_POD_NAME="shop-7d9", K8S_NODE_NAME="node-1",
                        K8S_NAMESPACE_NAME="namespace-from-env", OTEL_DISTRO_SERVICE_VERSION="3.1.4")
    _, base = start_config_app(start_service, env)
    assert http_get(base + "/emit?tag=views") == 200

    def bounds(name: str) -> list[list[float]]:
        return [p.bounds for m in receiver.metric(name) for p in m.points]

    receiver.wait_for(lambda: bounds("config_app.work.duration") and bounds("config_app.queue.wait"),
                      what="both histograms")
    # A second-valued histogram without advice: the distro's seconds buckets, as on the environment's path.
    assert set(map(tuple, bounds("config_app.work.duration"))) == {SECONDS_BUCKETS}
    # One the file's view selects: the file's boundaries only (a second stream, from the distro's view, would
    # bring the seconds buckets into this set).
    assert set(map(tuple, bounds("config_app.queue.wait"))) == {(1.0, 2.0, 3.0)}
    receiver.wait_for(lambda: any(s.name == "views-0" for s in receiver.spans()), what="the app's span")
    resource = next(s for s in receiver.spans() if s.name == "views-0").resource
    assert resource["k8s.pod.name"] == "shop-7d9" and resource["k8s.node.name"] == "node-1"
    assert resource["k8s.namespace.name"] == "namespace-from-file"  # the file's attribute wins
    assert resource["service.version"] == "3.1.4"
    assert (resource["telemetry.distro.name"], resource["telemetry.distro.version"]) == ("otel-distro", __version__)
    assert resource["service.name"] == "from-file"
    metric_resource = receiver.metric("config_app.work.duration")[-1].resource
    assert metric_resource["k8s.pod.name"] == "shop-7d9"
    # Instances are told apart although the file lists no detector and the process never forks.
    instance = resource["service.instance.id"]
    assert uuid.UUID(instance) and metric_resource["service.instance.id"] == instance


UNKNOWN_EXPORTER = """\
file_format: "1.0"
tracer_provider:
  processors:
    - batch:
        exporter:
          carrier_pigeon: {}
"""


@pytest.mark.integration
def test_an_unknown_exporter_is_one_line_and_the_service_runs_on_the_environment(receiver, start_service,
                                                                                 tmp_path) -> None:
    path = _write(tmp_path, UNKNOWN_EXPORTER)
    service, base = start_config_app(start_service, telemetry_env(receiver.endpoint, OTEL_CONFIG_FILE=path,
                                                        OTEL_SERVICE_NAME="fallback"))
    assert http_get(base + "/emit?tag=three") == 200
    receiver.wait_for(lambda: any(s.name == "three-9" for s in receiver.spans()), what="spans per the variables")
    assert next(s for s in receiver.spans() if s.name == "three-0").resource["service.name"] == "fallback"
    lines = [line for line in service.output().splitlines() if "OTEL_CONFIG_FILE" in line or path in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"otel-distro: OTEL_CONFIG_FILE: {path} is not a valid configuration file: ")
    assert "carrier_pigeon" in lines[0]
    assert lines[0].endswith("; using the environment's settings")


@pytest.mark.integration
@pytest.mark.parametrize("text", [UNKNOWN_EXPORTER, BROKEN["yaml error"][0]], ids=["unknown exporter", "yaml"])
def test_strict_mode_exits_2_on_a_file_it_cannot_use(text: str, tmp_path: Path) -> None:
    path = _write(tmp_path, text)
    env = telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path, OTEL_DISTRO_STRICT="true")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-c", "print('app ran')"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "app ran" not in done.stdout
    assert f"OTEL_CONFIG_FILE: {path} is not a valid configuration file" in done.stderr


def test_the_documented_example_is_the_shipped_one_and_loads_cleanly(monkeypatch) -> None:
    monkeypatch.delenv("OPAMP_ENDPOINT", raising=False)
    root = Path(__file__).resolve().parents[1]
    example = root / "examples" / "config-file" / "otel-config.yaml"
    page = (root / "docs" / "configuration-file.md").read_text()
    documented = page.split("```yaml\n")[-1].split("```")[0]
    assert yaml.safe_load(documented) == yaml.safe_load(example.read_text())
    monkeypatch.setenv("SERVICE_NAME", "shop")
    loaded = settings.load({"OTEL_CONFIG_FILE": str(example)}, report=False)
    assert loaded.problems == () and loaded.declarative is not None
    assert loaded.redact_keys == ("ssn", "iban") and loaded.log_format == "json"
    assert loaded.redact_patterns == (r"ORD-\d{6}", r"\b[A-Z]{2}\d{2,4}\b")
    assert loaded.opamp_endpoint is None  # ${OPAMP_ENDPOINT} unset: OpAMP stays off


@pytest.mark.integration
def test_forked_workers_export_what_the_file_builds_each_on_its_own_connections(receiver, start_service,
                                                                               tmp_path) -> None:
    path = _write(tmp_path, GOOD.replace("{endpoint}", receiver.endpoint))
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "gunicorn"), "--preload",
                             "-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}",
                             "tests.apps.config_app:app"], telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")

    def worker_pids() -> set[int]:
        return {s.resource.get("process.pid") for s in receiver.spans() if s.name.startswith("fork")}

    deadline = time.monotonic() + 40  # the kernel may give every connection to one worker for a while
    sent = 0
    while len(worker_pids()) < 2 and time.monotonic() < deadline and sent < 2000:
        assert http_get(base + f"/emit?tag=fork{sent}") == 200
        sent += 1
    pids = receiver.wait_for(lambda: len(worker_pids()) >= 2 and worker_pids(), what="spans from two workers")
    assert service.process.pid not in pids
    assert receiver.errors == []  # no two processes wrote on one connection
    assert all(s.attributes["ssn"] == "[REDACTED]" for s in receiver.spans() if s.name.startswith("fork"))


def test_opamp_can_be_switched_on_from_the_file(tmp_path: Path, monkeypatch) -> None:
    text = 'file_format: "1.0"\ndistribution:\n  otel_distro:\n    opamp_endpoint: ${CFG_OPAMP}\n    opamp_interval_s: 5\n'
    monkeypatch.setenv("CFG_OPAMP", "http://opamp.internal:4320/v1/opamp")
    loaded = settings.load({"OTEL_CONFIG_FILE": _write(tmp_path, text)}, report=False)
    assert (loaded.opamp_endpoint, loaded.opamp_interval_s) == ("http://opamp.internal:4320/v1/opamp", 5.0)
    assert loaded.sources["opamp_endpoint"] == "file"


def test_console_exporters_in_the_file_leave_fork_safety_on_for_the_others(tmp_path: Path) -> None:
    from otel_distro import config_file
    from otel_distro._sdk_private import exporter_connections

    text = ('file_format: "1.0"\ntracer_provider:\n  processors:\n    - simple:\n        exporter:\n'
            '          console: {}\n    - batch:\n        exporter:\n          otlp_http:\n'
            '            endpoint: http://127.0.0.1:9/v1/traces\n')
    chosen = settings.load({"OTEL_CONFIG_FILE": _write(tmp_path, text)}, report=False)
    built = config_file.build(chosen)  # under the tests, a retired seam raises
    try:
        assert exporter_connections.CLOSE.active
    finally:
        for provider in built[1:]:
            provider.shutdown()


# ---------------------------------------------------------------- configure(config_file=...) in code

IN_CODE = """\
import sys

import otel_distro
from opentelemetry import trace

otel_distro.configure(config_file=sys.argv[1])
with trace.get_tracer("in_code").start_as_current_span("from-code") as span:
    span.set_attribute("ssn", "078-05-1120")
print("app ran", flush=True)
otel_distro.shutdown()
"""


def _run_in_code(path: str, **extra: str) -> subprocess.CompletedProcess:
    env = telemetry_env("http://127.0.0.1:9", **extra)  # no OTEL_CONFIG_FILE: only the argument names the file
    return subprocess.run([str(BIN / "python"), "-c", IN_CODE, path], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.integration
def test_configure_loads_the_file_it_is_given(receiver, tmp_path: Path) -> None:
    done = _run_in_code(_write(tmp_path, GOOD.replace("{endpoint}", receiver.endpoint)), CFG_SERVICE="in-code")
    assert done.returncode == 0 and "app ran" in done.stdout, done.stderr
    span = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "from-code"], what="the span")[0]
    assert span.resource["service.name"] == "in-code"  # the file's resource, its ${CFG_SERVICE} substituted
    assert span.attributes["ssn"] == "[REDACTED]"  # redact_keys from the file's distro section
    assert "OTEL_CONFIG_FILE" not in done.stderr


@pytest.mark.integration
def test_configure_with_a_bad_file_is_one_line_and_strict_mode_exits_2(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN["schema error"][0])
    done = _run_in_code(path)
    lines = [line for line in done.stderr.splitlines() if path in line]
    assert done.returncode == 0 and "app ran" in done.stdout, done.stderr
    assert len(lines) == 1 and lines[0].startswith(f"otel-distro: OTEL_CONFIG_FILE: {path} is not a valid "
                                                   "configuration file: "), done.stderr
    assert lines[0].endswith("; using the environment's settings")
    strict = _run_in_code(path, OTEL_DISTRO_STRICT="true")
    assert strict.returncode == 2 and "app ran" not in strict.stdout, strict.stderr
    assert f"OTEL_CONFIG_FILE: {path} is not a valid configuration file" in strict.stderr


# ---------------------------------------------------------------- otel-distro doctor on the file


@pytest.mark.integration
def test_doctor_says_the_file_is_loaded_where_it_sends_telemetry_and_probes_that(receiver, tmp_path: Path) -> None:
    from tests.test_doctor import _doctor

    path = _write(tmp_path, GOOD.replace("{endpoint}", receiver.endpoint))
    # The variables name a port nothing listens on: the probe goes where the file sends spans.
    done = _doctor(telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path, K8S_POD_NAME="shop-7d9"))
    url = receiver.endpoint
    assert f"[ok] config file: {path} loaded; exporters: tracer -> otlp_http {url}/v1/traces; " \
           f"meter -> otlp_http {url}/v1/metrics; logger -> otlp_http {url}/v1/logs" in done.stdout
    assert f"[ok] otlp endpoint: a test span was accepted by {url}/v1/traces" in done.stdout
    assert [s.name for s in receiver.spans()] == ["otel-distro doctor probe"]
    assert "shop-7d9  (environment)" in done.stdout  # K8S_* are read with a file too
    assert done.returncode == 0, done.stdout


@pytest.mark.integration
@pytest.mark.parametrize("case", ["schema error", "unknown exporter"])
def test_doctor_names_a_file_the_service_would_refuse_once(case: str, tmp_path: Path) -> None:
    from tests.test_doctor import _doctor

    path = _write(tmp_path, BROKEN["schema error"][0] if case == "schema error" else UNKNOWN_EXPORTER)
    done = _doctor(telemetry_env("http://127.0.0.1:9", OTEL_CONFIG_FILE=path, OTEL_SERVICE_NAME="shop"))
    said = [line.strip() for line in done.stdout.splitlines() if path in line and "[" in line]  # findings only
    assert done.returncode == 1
    if case == "schema error":  # one line, not a second one under "variables"
        assert said == [f"[PROBLEM] config file: refused: {path} is not a valid configuration file: "
                        "Configuration does not match schema: 3 is not of type 'array' (at tracer_provider -> "
                        "processors); using the environment's settings"]
    else:
        assert said == [f"[PROBLEM] config file: {path}: tracer_provider names the exporter 'carrier_pigeon', "
                        "which no installed package provides: the service will refuse the file and run on the "
                        "environment's settings", f"[PROBLEM] service.name: {path} sets no service.name resource "
                        "attribute: telemetry will say unknown_service"]
