"""`otel-distro collector check` with the built Collector: every shipped config (standalone, and the `config:`
of both Helm values files merged over the chart's defaults) passes `otelcol validate`; the values files pass
the chart's schema; and each defect issue 14 found in the old checker is now caught, one test per defect."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from otel_distro.collector_check import check_file, collector_components, helm_merge
from otel_distro.stack_build import Built
from tests.collector.conftest import COLLECTOR, yaml

CONFIG = COLLECTOR / "otelcol-config.yaml"
AGENT = COLLECTOR / "k8s" / "values-agent.yaml"
GATEWAY = COLLECTOR / "k8s" / "values-gateway.yaml"


def _errors(problems: list) -> list[str]:
    return [p.message for p in problems if p.severity == "error"]


def _write(tmp_path: Path, data: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("path", [CONFIG, AGENT, GATEWAY], ids=lambda p: p.name)
def test_every_shipped_config_passes_otelcol_validate_and_the_chart_schema(path: Path, built: Built,
                                                                           chart: Path) -> None:
    assert check_file(path, binary=built.collector, chart=chart) == []


def test_the_cli_checks_with_the_built_collector(built: Built, chart: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "otel_distro.cli", "collector", "check", str(GATEWAY),
                           "--chart", str(chart)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("0 error(s), 0 warning(s)")
    broken = yaml.safe_load(CONFIG.read_text())
    broken["exporters"]["prometheus"]["metrics_expiration"] = "5m"
    done = subprocess.run([sys.executable, "-m", "otel_distro.cli", "collector", "check",
                           str(_write(tmp_path, broken))], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "metrics_expiration" in done.stdout, done.stdout + done.stderr


def test_the_component_list_is_the_binarys_own(built: Built) -> None:
    components = collector_components(built.collector)
    used = {"receivers": {"otlp"}, "connectors": {"span_metrics", "forward"},
            "processors": {"memory_limiter", "resource_detection", "redaction", "batch", "k8s_attributes",
                           "tail_sampling"},
            "exporters": {"prometheus", "otlp_grpc", "otlp_http", "load_balancing"},
            "extensions": {"health_check", "pprof", "zpages"}}
    for cls, types in used.items():
        assert types <= components.types[cls], (cls, components.types[cls])
    # the names the hand-kept list had wrong are not what this Collector calls its components
    assert not {"spanmetrics", "resourcedetection", "loadbalancing"} & set().union(*components.types.values())


# ------------------------------------------------------------------ one test per defect in the issue

def test_wrong_type_name_is_an_error(built: Built, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["extensions"]["oidcauth"] = {"issuer_url": "https://issuer.example"}
    config["service"]["extensions"].append("oidcauth")
    errors = _errors(check_file(_write(tmp_path, config), binary=built.collector))
    assert any("unknown extension type 'oidcauth'" in e for e in errors), errors


def test_unknown_key_metrics_expiration_is_an_error(built: Built, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["exporters"]["prometheus"]["metrics_expiration"] = config["exporters"]["prometheus"].pop(
        "metric_expiration")
    errors = _errors(check_file(_write(tmp_path, config), binary=built.collector))
    assert len(errors) == 1 and "otelcol validate" in errors[0] and "metrics_expiration" in errors[0], errors


def test_bad_regex_is_an_error(built: Built, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["processors"]["redaction"]["blocked_values"].append("(?i)bearer\\s+([a-z")
    errors = _errors(check_file(_write(tmp_path, config), binary=built.collector))
    assert len(errors) == 1 and "redaction" in errors[0] and "missing closing" in errors[0], errors


def test_limit_percentage_eighty_is_an_error(built: Built, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["processors"]["memory_limiter"]["limit_percentage"] = "eighty"
    errors = _errors(check_file(_write(tmp_path, config), binary=built.collector))
    assert len(errors) == 1 and "limit_percentage" in errors[0], errors


def test_headless_gateway_service_is_an_error(built: Built, tmp_path: Path) -> None:
    values = yaml.safe_load(AGENT.read_text())
    values["config"]["exporters"]["load_balancing"]["resolver"]["k8s"]["service"] = (
        "otel-gateway-opentelemetry-collector-headless.observability")
    errors = _errors(check_file(_write(tmp_path, values, "values.yaml"), binary=built.collector))
    assert len(errors) == 1 and "creates no '-headless' service" in errors[0], errors


def test_missing_endpointslice_rbac_is_an_error(built: Built, tmp_path: Path) -> None:
    values = yaml.safe_load(AGENT.read_text())
    values["clusterRole"]["rules"] = [r for r in values["clusterRole"]["rules"]
                                      if "discovery.k8s.io" not in r["apiGroups"]]
    errors = _errors(check_file(_write(tmp_path, values, "values.yaml"), binary=built.collector))
    assert len(errors) == 1 and "endpointslices" in errors[0], errors


def test_values_outside_the_chart_schema_are_errors(built: Built, chart: Path, tmp_path: Path) -> None:
    values = yaml.safe_load(GATEWAY.read_text())
    values["mode"] = "replicaset"
    errors = _errors(check_file(_write(tmp_path, values, "values.yaml"), binary=built.collector, chart=chart))
    assert errors and all("(chart schema)" in e for e in errors) and any(e.split(": ")[1] == "mode"
                                                                         for e in errors), errors


def test_helm_merge_follows_helms_rules() -> None:
    defaults = {"config": {"receivers": {"jaeger": {"a": 1}, "otlp": {"protocols": {"grpc": {"x": 1}}}},
                           "service": {"pipelines": {"traces": {"receivers": ["otlp", "jaeger"]}}}},
                "mode": ""}
    values = {"config": {"receivers": {"jaeger": None, "otlp": {"protocols": {"http": {"y": None, "z": 2}}}},
                         "service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}}, "mode": "deployment"}
    before = copy.deepcopy(defaults)
    assert helm_merge(defaults, values) == {
        "config": {"receivers": {"otlp": {"protocols": {"grpc": {"x": 1}, "http": {"z": 2}}}},
                   "service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}},
        "mode": "deployment"}
    assert defaults == before
