"""Settings: one table, typed values, one clear line per bad value, strict mode."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from otel_distro import settings
from otel_distro.settings import TABLE, Settings, load

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_CONFIG_FILE = ROOT / "examples" / "config-file" / "otel-config.yaml"

# For every variable: one accepted value with the typed result, and one rejected value.
CASES: dict[str, tuple[str, object, str]] = {
    "OTEL_SDK_DISABLED": ("TRUE", True, "maybe"),
    "OTEL_SERVICE_NAME": (" shop ", "shop", None),
    "OTEL_RESOURCE_ATTRIBUTES": ("team=core,region=eu%2Cwest", (("team", "core"), ("region", "eu,west")), "novalue"),
    "OTEL_TRACES_EXPORTER": ("otlp,console", ("otlp", "console"), "jaeger"),
    "OTEL_METRICS_EXPORTER": ("otlp,prometheus", ("otlp", "prometheus"), "statsd"),
    "OTEL_LOGS_EXPORTER": ("none", (), "kafka"),
    "OTEL_EXPORTER_OTLP_ENDPOINT": ("http://collector:4318/", "http://collector:4318", "collector:4318"),
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": ("https://c:4318/v1/traces", "https://c:4318/v1/traces", "ftp://c"),
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": ("http://c:9/m", "http://c:9/m", "http://:99999"),
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": ("http://c/l", "http://c/l", "not a url"),
    "OTEL_EXPORTER_OTLP_PROTOCOL": ("http/protobuf", "http/protobuf", "grpc"),
    "OTEL_EXPORTER_OTLP_TIMEOUT": ("2500", 2500, "-1"),
    "OTEL_EXPORTER_OTLP_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/ca.pem"),
    "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_traces_certificate.pem"),
    "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_metrics_certificate.pem"),
    "OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_logs_certificate.pem"),
    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_client_certificate.pem"),
    "OTEL_EXPORTER_OTLP_CLIENT_KEY": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_client_key.pem"),
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_traces_client_certificate.pem"),
    "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_traces_client_key.pem"),
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_metrics_client_certificate.pem"),
    "OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_metrics_client_key.pem"),
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_logs_client_certificate.pem"),
    "OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), "/no/such/otel_exporter_otlp_logs_client_key.pem"),
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": ("1500", 1500, "soon"),
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT": ("700", 700, "0"),
    "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": ("900", 900, "600001"),
    "OTEL_METRIC_EXPORT_TIMEOUT": ("30000", 30000, "-5"),
    "OTEL_BLRP_MAX_QUEUE_SIZE": ("4096", 4096, "0"),
    "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": ("256", 256, "many"),
    "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": ("Delta", "delta", "sometimes"),
    "OTEL_TRACES_SAMPLER": ("parentbased_traceidratio", "parentbased_traceidratio", "sometimes"),
    "OTEL_TRACES_SAMPLER_ARG": ("0.25", 0.25, "1.5"),
    "OTEL_METRIC_EXPORT_INTERVAL": ("15000", 15000, "fast"),
    "OTEL_EXPORTER_PROMETHEUS_HOST": ("0.0.0.0", "0.0.0.0", "bad host!"),
    "OTEL_EXPORTER_PROMETHEUS_PORT": ("9100", 9100, "70000"),
    "OTEL_DISTRO_PROMETHEUS_WORKERS_DIR": ("/run/shop-workers", "/run/shop-workers", None),
    "K8S_POD_NAME": ("shop-7d9", "shop-7d9", None),
    "K8S_POD_UID": ("0b1c", "0b1c", None),
    "K8S_NAMESPACE_NAME": ("prod", "prod", None),
    "K8S_NODE_NAME": ("node-1", "node-1", None),
    "OTEL_DISTRO_STRICT": ("yes", True, "strictly"),
    "OTEL_DISTRO_SERVICE_VERSION": ("1.4.2", "1.4.2", None),
    "OTEL_DISTRO_ENVIRONMENT": ("staging", "staging", None),
    "OTEL_DISTRO_FILE_EXPORT_DIR": ("/tmp/t", "/tmp/t", None),
    "OTEL_DISTRO_SYSTEM_METRICS": ("off", False, "sometimes"),
    "OTEL_DISTRO_EXCLUDED_URLS": ("/ping, /status", ("/ping", "/status"), None),
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": ("X-Tenant, Accept", ("x-tenant", "accept"), None),
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE": ("Content-Type", ("content-type",), None),
    "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS": ("X-Api-Key", ("x-api-key",), None),
    "OTEL_DISTRO_HTTP_INSTRUMENTATION": ("Contrib", "contrib", "both"),
    "OTEL_DISTRO_ASGI_SUBSPANS": ("1", True, "both"),
    "OTEL_DISTRO_LOG_EXPORT_LEVEL": ("WARNING", logging.WARNING, "loud"),
    "OTEL_DISTRO_SHUTDOWN_TIMEOUT": ("2.5", 2.5, "0"),
    "OTEL_DISTRO_EXPORT_ERROR_INTERVAL": ("10", 10.0, "often"),
    "OTEL_DISTRO_LOG_FORMAT": ("JSON", "json", "yaml"),
    "OTEL_DISTRO_REDACT": ("false", False, "partly"),
    "OTEL_DISTRO_REDACT_KEYS": ("ssn, iban", ("ssn", "iban"), None),
    # An invalid pattern is reported on a line of its own; see test_redaction_settings.py.
    "OTEL_DISTRO_REDACT_PATTERNS": (r"\d{3,4}-x,(?i)secret\,word", (r"\d{3,4}-x", r"(?i)secret\,word"), None),
    "OTEL_DISTRO_REDACT_EMAILS": ("Hash", "hash", "drop"),
    "OTEL_DISTRO_REDACT_MAX_LENGTH": ("4096", 4096, "12"),
    "OTEL_DISTRO_AI_SPAN_METRICS": ("false", False, "sometimes"),
    "OTEL_DISTRO_AI_PRICES_FILE": (" prices.yaml ", "prices.yaml", None),
    "OTEL_DISTRO_AI_PRICES_UPDATE_URL": ("https://prices.example/data.json", "https://prices.example/data.json", "prices.json"),
    "OTEL_DISTRO_AI_COST_ATTRIBUTES": ("tenant, feature,tenant", ("tenant", "feature"), "tenant,bad key"),
    "OTEL_DISTRO_AI_STREAM_USAGE": ("off", False, "ask"),
    "OTEL_DISTRO_AI_BUDGETS_FILE": (" budgets.yaml ", "budgets.yaml", None),
    "OTEL_DISTRO_AI_CONTENT": ("Redacted", "redacted", "partial"),
    "OTEL_DISTRO_AI_CONTENT_MAX_BYTES": ("1024", 1024, "8"),
    "OTEL_DISTRO_BUSINESS_METRICS_FILE": ("kpis.yaml", "kpis.yaml", None),
    "OTEL_DISTRO_METRIC_ATTRIBUTE_VALUES": ("50", 50, "0"),
    # A file that cannot be used is one line too: see test_config_file.py.
    "OTEL_CONFIG_FILE": (str(EXAMPLE_CONFIG_FILE), str(EXAMPLE_CONFIG_FILE), None),
    "OTEL_DISTRO_OPAMP_ENDPOINT": ("http://opamp:4320/v1/opamp", "http://opamp:4320/v1/opamp", "opamp:4320"),
    # A secret: its bad value is not shown (test_remote_config.py).
    "OTEL_DISTRO_OPAMP_HEADERS": ("authorization=Bearer%20x", (("authorization", "Bearer x"),), None),
    "OTEL_DISTRO_OPAMP_INTERVAL": ("0.5", 0.5, "0"),
}


def test_every_setting_has_a_case_and_a_field() -> None:
    assert set(CASES) == {s.env for s in TABLE}
    fields = {f.name for f in dataclasses.fields(Settings)} - {"program_name", "problems", "sources", "declarative"}
    assert fields == {s.field for s in TABLE}


def test_defaults_come_from_the_table() -> None:
    loaded = load({})
    for s in TABLE:
        assert getattr(loaded, s.field) == s.default, s.env
    assert loaded.problems == ()


@pytest.mark.parametrize("env", sorted(CASES))
def test_valid_value_is_parsed(env: str) -> None:
    raw, expected, _ = CASES[env]
    setting = next(s for s in TABLE if s.env == env)
    loaded = load({env: raw}, report=False)
    assert getattr(loaded, setting.field) == expected
    assert loaded.problems == ()
    assert loaded.sources[setting.field] == "environment"


# The TLS files: the SDK's exporters read these variables themselves, so there is no fallback to name; the line
# says what follows instead.
READ_BY_THE_SDK_TOO = {env for env in CASES if env.endswith(("_CERTIFICATE", "_CLIENT_KEY"))}


@pytest.mark.parametrize("env", sorted(e for e, c in CASES.items() if c[2] is not None))
def test_invalid_value_gives_one_line_and_the_default(env: str, capsys: pytest.CaptureFixture) -> None:
    bad = CASES[env][2]
    setting = next(s for s in TABLE if s.env == env)
    loaded = load({env: bad})
    assert getattr(loaded, setting.field) == setting.default
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert env in lines[0] and repr(bad) in lines[0] and "accepted:" in lines[0]
    if env in READ_BY_THE_SDK_TOO:
        assert "every OTLP export over https fails until it is fixed" in lines[0]
    else:
        assert f"using {setting.default_text}" in lines[0]


@pytest.mark.parametrize("env", sorted(READ_BY_THE_SDK_TOO))
def test_an_unreadable_tls_file_is_named_unusable_not_ignored_in_part(env: str) -> None:
    """Nothing replaces it (the SDK reads the variable as given): its source must not suggest a fallback."""
    setting = next(s for s in TABLE if s.env == env)
    loaded = load({env: CASES[env][2]}, report=False)
    assert loaded.sources[setting.field] == "environment (unusable, no fallback: read as given by the SDK)"
    overridden = load({}, report=False).with_overrides(**{setting.field: CASES[env][2]}, report=False)
    assert overridden.sources[setting.field].startswith("configure() (unusable, no fallback")
    assert len(loaded.problems) == 1 and "fails until it is fixed" in loaded.problems[0].message


def test_empty_value_means_unset() -> None:
    assert load({"OTEL_EXPORTER_OTLP_TIMEOUT": "  "}).otlp_timeout_ms == 10_000


def test_strict_mode_turns_a_bad_value_into_exit_status_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        load({"OTEL_DISTRO_STRICT": "true", "OTEL_TRACES_SAMPLER_ARG": "2"})
    assert stopped.value.code == 2
    assert "OTEL_TRACES_SAMPLER_ARG='2' is invalid" in capsys.readouterr().err


def test_strict_mode_with_good_values_starts() -> None:
    assert load({"OTEL_DISTRO_STRICT": "true", "OTEL_TRACES_SAMPLER_ARG": "0.5"}).sampler_arg == 0.5


def test_signal_endpoint_appends_the_signal_path_unless_set() -> None:
    loaded = load({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                   "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://other:1/logs"})
    assert loaded.signal_endpoint("traces") == "http://c:4318/v1/traces"
    assert loaded.signal_endpoint("logs") == "http://other:1/logs"


def test_overrides_replace_fields_and_reject_unknown_names() -> None:
    loaded = load({}).with_overrides(service_name="shop", traces_exporter=())
    assert (loaded.service_name, loaded.traces_exporter) == ("shop", ())
    assert loaded.sources["service_name"] == "configure()"
    with pytest.raises(TypeError, match="no_such_setting"):
        load({}).with_overrides(no_such_setting=1)


def test_configure_arguments_are_read_as_their_variables_are() -> None:
    loaded = load({}).with_overrides(metrics_exporter="prometheus", logs_exporter=["console", "otlp"],
                                     sampler_arg=0.25, resource_attributes={"team": "a"}, system_metrics=False,
                                     otlp_timeout_ms=500)
    assert loaded.metrics_exporter == ("prometheus",) and loaded.logs_exporter == ("console", "otlp")
    assert (loaded.sampler_arg, loaded.resource_attributes) == (0.25, (("team", "a"),))
    assert (loaded.system_metrics, loaded.otlp_timeout_ms) == (False, 500)
    assert loaded.problems == ()


def test_an_invalid_configure_argument_is_reported_on_one_line_naming_it_and_ignored(capsys) -> None:
    loaded = load({"OTEL_TRACES_SAMPLER_ARG": "0.5"}).with_overrides(sampler_arg=5.0, metrics_exporter="prometheus,x",
                                                                      otlp_endpoint=4318)
    assert (loaded.sampler_arg, loaded.metrics_exporter, loaded.otlp_endpoint) == (0.5, ("otlp",),
                                                                                   "http://localhost:4318")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and len(loaded.problems) == 3
    assert lines[0] == ("otel-distro: configure() argument sampler_arg='5.0' is invalid (accepted: a number from 0 "
                        "to 1); using 0.5 (environment)")
    assert lines[1].startswith("otel-distro: configure() argument metrics_exporter='prometheus,x' is invalid")
    assert "configure() argument otlp_endpoint='4318'" in lines[2] and "URL" in lines[2]
    assert loaded.sources["sampler_arg"] == "environment"


def test_an_invalid_configure_argument_in_strict_mode_exits_2() -> None:
    with pytest.raises(SystemExit) as stopped:
        load({"OTEL_DISTRO_STRICT": "true"}, report=False).with_overrides(sampler_arg=5.0)
    assert stopped.value.code == 2


def test_configure_with_one_exporter_named_as_text_starts_it() -> None:
    code = ("import otel_distro; t = otel_distro.configure(service_name='one', metrics_exporter='prometheus', "
            "traces_exporter='none', logs_exporter='none', system_metrics=False); "
            "print(t.settings.metrics_exporter, t.pull_endpoint is not None); otel_distro.shutdown()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_PROMETHEUS_PORT"] = "0"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["('prometheus',)", "True"], done.stdout


def test_distro_defaults_never_overwrite_the_user() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console"}
    settings.apply_distro_defaults(env)
    assert env["OTEL_TRACES_EXPORTER"] == "console"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"
    assert env["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http,database"


def test_docs_env_var_table_equals_the_settings_table() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    start, end = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
    documented = doc.split(start, 1)[1].split(end, 1)[0].strip()
    assert documented == settings.markdown_table(), (
        "docs/configuration.md is out of date: run python -m otel_distro.settings_doc")


def test_only_settings_reads_the_environment() -> None:
    readers = []
    for path in (ROOT / "otel_distro").rglob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        if re.search(r"os\.environ|os\.getenv|environ\.get|from os import environ", text):
            readers.append(path.name)
    assert readers == []


def test_strict_mode_stops_an_instrumented_process_with_status_2(tmp_path: Path) -> None:
    from tests.conftest import BIN, telemetry_env

    env = telemetry_env("http://127.0.0.1:9", OTEL_DISTRO_STRICT="true",
                        OTEL_METRIC_EXPORT_INTERVAL="soon", OTEL_SERVICE_NAME="strict")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c",
                           "print('app ran')"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "app ran" not in done.stdout
    assert done.stderr.count("OTEL_METRIC_EXPORT_INTERVAL='soon' is invalid") == 1


def test_bad_value_without_strict_mode_keeps_the_process_running() -> None:
    from tests.conftest import BIN, telemetry_env

    env = telemetry_env("http://127.0.0.1:9", OTEL_METRIC_EXPORT_INTERVAL="soon",
                        OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                        OTEL_LOGS_EXPORTER="none", OTEL_SERVICE_NAME="lenient")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c",
                           "print('app ran')"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "app ran" in done.stdout
    problem_lines = [l for l in done.stderr.splitlines() if "is invalid" in l]
    assert problem_lines == ["otel-distro: OTEL_METRIC_EXPORT_INTERVAL='soon' is invalid "
                             "(accepted: an integer from 100 to 86400000); using 60000"]
