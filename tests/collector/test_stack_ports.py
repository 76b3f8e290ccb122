"""`otel-distro stack up`'s ports: the standard ones by default, each overridable, and the Collector config
with only its listeners moved."""

from __future__ import annotations

import pytest

from otel_distro.stack_up import STANDARD_PORTS, choose_ports, collector_config
from tests.collector.conftest import COLLECTOR, yaml


def test_standard_ports_by_default_and_each_overridable() -> None:
    assert choose_ports({}) == dict(STANDARD_PORTS)
    assert choose_ports({"otlp_http": 14318})["otlp_http"] == 14318
    free = choose_ports({"prometheus": 19090}, free=True)
    assert free["prometheus"] == 19090 and len(set(free.values())) == len(STANDARD_PORTS)


def test_unknown_names_and_shared_ports_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown port name"):
        choose_ports({"grafana": 3000})
    with pytest.raises(ValueError, match="share a port"):
        choose_ports({"prometheus": 4317})


def test_collector_config_moves_listeners_and_leaves_clients_alone() -> None:
    shipped = yaml.safe_load((COLLECTOR / "otelcol-config.yaml").read_text())
    moved = collector_config(shipped, {4317: 24317, 4318: 24318, 13133: 23133, 8888: 28888, 8889: 28889,
                                       1777: 21777, 55679: 25679})
    assert moved["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "${env:OTEL_COLLECTOR_HOST:-localhost}:24317"
    assert moved["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":24318")
    assert moved["extensions"]["health_check"]["endpoint"].endswith(":23133")
    assert moved["extensions"]["zpages"]["endpoint"] == "localhost:25679"
    assert moved["exporters"]["prometheus"]["endpoint"].endswith(":28889")
    assert moved["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]["port"] == 28888
    # clients keep their peers' addresses (given through the environment)
    assert moved["exporters"]["otlp_grpc/jaeger"] == shipped["exporters"]["otlp_grpc/jaeger"]
    assert moved["processors"] == shipped["processors"] and moved["service"]["pipelines"] == shipped["service"]["pipelines"]
    assert shipped["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317"), "the input is not changed"
