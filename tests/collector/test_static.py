"""The Collector config checker on shipped and broken configs (the built Collector judges: `otelcol
validate`, `otelcol components`), plus static checks of compose, Helm values and Grafana files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from otel_distro.collector_check import Problem, check_config, check_config_data, collector_components
from otel_distro.stack_build import Built, CollectorManifest
from tests.collector.conftest import COLLECTOR, yaml

CONFIG = COLLECTOR / "otelcol-config.yaml"
HELM = sorted((COLLECTOR / "k8s").glob("values-*.yaml"))
VERSION = CollectorManifest.load().release


def test_shipped_config_is_clean(built: Built) -> None:
    assert check_config(CONFIG, binary=built.collector) == []


def _messages(data: dict, built: Built) -> list[Problem]:
    return check_config_data(data, source="broken.yaml", components=collector_components(built.collector))


def _base() -> dict:
    return yaml.safe_load(CONFIG.read_text())


SEEDED = {
    "unknown component type": (
        lambda c: c["exporters"].__setitem__("jaeger", {"endpoint": "x:14250"}) or
        c["service"]["pipelines"]["traces"]["exporters"].append("jaeger"),
        "exporters.jaeger: unknown exporter type 'jaeger': not in the built Collector"),
    "undefined reference": (
        lambda c: c["service"]["pipelines"]["metrics"]["exporters"].append("prometheusremotewrite"),
        "service.pipelines.metrics.exporters[1]: 'prometheusremotewrite' is not defined under exporters"),
    "undefined processor": (
        lambda c: c["service"]["pipelines"]["logs"]["processors"].append("filter/drop"),
        "service.pipelines.logs.processors[4]: 'filter/drop' is not defined under processors"),
    "connector used on one side": (
        lambda c: c["service"]["pipelines"]["metrics"]["receivers"].remove("span_metrics"),
        "connectors.span_metrics: is an exporter in pipeline(s) traces but no pipeline receives from it"),
    "memory_limiter not first": (
        lambda c: c["service"]["pipelines"]["traces"].__setitem__(
            "processors", ["batch", "memory_limiter", "resource_detection", "redaction"]),
        "service.pipelines.traces.processors: memory_limiter must be the first processor, found 'batch'"),
    "memory_limiter missing": (
        lambda c: c["service"]["pipelines"]["logs"].__setitem__("processors", ["batch"]),
        "service.pipelines.logs.processors: memory_limiter must be the first processor, found 'batch'"),
    "binds 0.0.0.0": (
        lambda c: c["receivers"]["otlp"]["protocols"]["grpc"].__setitem__("endpoint", "0.0.0.0:4317"),
        "receivers.otlp.protocols.grpc.endpoint: binds all interfaces ('0.0.0.0:4317')"),
    "binds empty host": (
        lambda c: c["exporters"]["prometheus"].__setitem__("endpoint", ":8889"),
        "exporters.prometheus.endpoint: binds all interfaces (':8889')"),
    "telemetry binds 0.0.0.0": (
        lambda c: c["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
        .__setitem__("host", "0.0.0.0"),
        "service.telemetry.metrics.readers[0].pull.exporter.prometheus.host: binds all interfaces"),
    "undefined extension": (
        lambda c: c["service"]["extensions"].append("oauth2client"),
        "service.extensions[3]: 'oauth2client' is not defined under extensions"),
    "pipeline without exporters": (
        lambda c: c["service"]["pipelines"]["logs"].__setitem__("exporters", []),
        "service.pipelines.logs: has no exporters"),
    "processor used as exporter": (
        lambda c: c["exporters"].__setitem__("batch", {}) or c["service"]["pipelines"]["logs"]["exporters"].append("batch"),
        "exporters.batch: unknown exporter type 'batch': not in the built Collector " + VERSION + " (it is one of the processors)"),
}


@pytest.mark.parametrize("name", SEEDED)
def test_each_seeded_problem_is_reported(name: str, built: Built) -> None:
    mutate, expected = SEEDED[name]
    config = _base()
    mutate(config)
    problems = _messages(config, built)
    assert any(expected in p.message and p.severity == "error" for p in problems), \
        f"expected {expected!r} in {[str(p) for p in problems]}"


def test_placeholder_bind_is_allowed_and_problem_is_frozen(built: Built) -> None:
    config = _base()
    config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] = "${env:MY_POD_IP}:4317"
    assert _messages(config, built) == []
    problem = Problem("x")
    with pytest.raises(AttributeError):
        problem.message = "y"  # type: ignore[misc]


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    missing = check_config(tmp_path / "nope.yaml")
    assert len(missing) == 1 and "cannot read the file" in missing[0].message
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [otlp\n")
    problems = check_config(bad)
    assert len(problems) == 1 and "not valid YAML" in problems[0].message


def test_version_pinned_consistently() -> None:
    manifest = yaml.safe_load((COLLECTOR / "builder-config.yaml").read_text())
    modules = [entry["gomod"] for kind in ("receivers", "processors", "exporters", "connectors", "extensions")
               for entry in manifest[kind]]
    assert {module.split()[1] for module in modules} == {f"v{VERSION}"}, "one release for every module"
    compose = yaml.safe_load((COLLECTOR / "compose.yaml").read_text())
    assert compose["services"]["collector"]["image"] == f"otel/opentelemetry-collector-contrib:{VERSION}"
    for path in HELM:
        assert yaml.safe_load(path.read_text())["image"]["tag"] == VERSION, path.name
    others = [p for p in COLLECTOR.rglob("*") if p.is_file()
              and re.search(r"0\.1[0-9]{2}\.[0-9]", p.read_text(errors="ignore"))]
    assert all(VERSION in p.read_text() for p in others), f"another otelcol version appears in {others}"


def test_compose_publishes_only_on_localhost_and_pins_images() -> None:
    compose = yaml.safe_load((COLLECTOR / "compose.yaml").read_text())
    assert set(compose["services"]) == {"collector", "jaeger", "victorialogs", "prometheus", "alertmanager",
                                        "grafana"}
    for name, service in compose["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: unpinned image {image}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"


def test_grafana_provisioning_and_dashboards() -> None:
    datasources = yaml.safe_load((COLLECTOR / "grafana/provisioning/datasources/datasources.yaml").read_text())
    uids = {d["uid"]: d["type"] for d in datasources["datasources"]}
    assert uids == {"prometheus": "prometheus", "jaeger": "jaeger", "victorialogs": "victoriametrics-logs-datasource"}
    dashboards = [json.loads(p.read_text()) for p in sorted((COLLECTOR / "grafana/dashboards").glob("*.json"))]
    assert {d["title"] for d in dashboards} == {"API performance", "AI costs", "Business KPIs", "System health"}
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    for dashboard in dashboards:
        assert [v["name"] for v in dashboard["templating"]["list"]] == ["service"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)), dashboard["uid"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            assert panel["targets"], f"{dashboard['uid']}/{panel['title']} has no query"
            for target in panel["targets"]:
                if "otelcol_" not in target["expr"] and target["expr"] not in ("0.001", "0.01"):
                    assert "$service" in target["expr"], f"{panel['title']}: query ignores $service"


def test_compose_file_passes_the_compose_spec_and_limits_every_service() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema (the collector extra) validates the spec")
    spec_path = Path("/work/shared/reference/compose-spec.json")
    if not spec_path.is_file():
        pytest.skip(f"the Compose spec schema is not at {spec_path}")
    compose = yaml.safe_load((COLLECTOR / "compose.yaml").read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(json.loads(spec_path.read_text())).iter_errors(compose)]
    assert errors == []
    for name, service in compose["services"].items():
        assert service.get("mem_limit"), f"{name} has no memory limit"
    assert compose["services"]["collector"]["environment"]["GOMEMLIMIT"]
    broken = {**compose, "services": {**compose["services"], "collector": {
        **compose["services"]["collector"], "mem_limit": ["512m"]}}}
    assert list(jsonschema.Draft7Validator(json.loads(spec_path.read_text())).iter_errors(broken))
