"""The Kubernetes agent/gateway topology on loopback, with the built Collector and the shipped Helm values.

One agent (values-agent.yaml's `config:` merged over the chart's defaults; the k8s resolver swapped for a
static one and k8s_attributes dropped, as nothing here is a cluster) routes spans by trace id through
`load_balancing` to two gateways (values-gateway.yaml's `config:` as it ships: span metrics, then tail
sampling), each exporting to its own Jaeger, so where a trace landed is visible. Real OTLP from the SDK:

- every span of a kept trace is in one Jaeger, never split;
- every trace with an error is kept, whole;
- of the other traces, about the configured share (`sample-the-rest`) is kept.
"""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from otel_distro import _assets
from otel_distro.collector_check import helm_merge
from otel_distro.stack_build import Built
from otel_distro.stack_up import RunningStack, collector_config
from tests.collector.conftest import COLLECTOR, http_get_json, wait_for, yaml
from tests.conftest import free_port

# a loaded 2-core machine starts the processes one after the other: more than the default 120 s
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TRACES = 300
ERROR_EVERY = 5  # one trace in five has a failing child span
SPANS_PER_TRACE = 3
SERVICE = "topology-emitter"


@dataclass
class Gateway:
    grpc: int
    jaeger_query: int
    jaeger_otlp: int

    def traces(self) -> dict[str, int]:
        """trace id → span count, as this gateway's Jaeger has them."""
        url = f"http://127.0.0.1:{self.jaeger_query}/api/traces?" + urllib.parse.urlencode(
            {"service": SERVICE, "limit": str(TRACES * 2), "lookback": "1h"})
        return {t["traceID"]: len(t["spans"]) for t in http_get_json(url)["data"]}


def _values_config(name: str, chart: Path) -> dict:
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    values = yaml.safe_load((COLLECTOR / "k8s" / name).read_text())
    return helm_merge(defaults, values)["config"]


def _listeners(grpc: int, http: int | None = None) -> dict[int, int]:
    return {4317: grpc, 4318: http or free_port(), 13133: free_port(), 8888: free_port(), 8889: free_port()}


def _agent_config(chart: Path, agent_http: int, gateways: list[Gateway]) -> tuple[dict, int]:
    port_map = _listeners(free_port(), agent_http)
    config = collector_config(_values_config("values-agent.yaml", chart), port_map)
    load_balancing = config["exporters"]["load_balancing"]
    assert set(load_balancing["resolver"]) == {"k8s"}, "the shipped agent resolves gateways through k8s"
    load_balancing["resolver"] = {"static": {"hostnames": [f"127.0.0.1:{g.grpc}" for g in gateways]}}
    config["exporters"]["otlp_grpc/gateway"]["endpoint"] = f"127.0.0.1:{gateways[0].grpc}"
    del config["processors"]["k8s_attributes"]
    for pipeline in config["service"]["pipelines"].values():
        pipeline["processors"] = [p for p in pipeline["processors"] if p != "k8s_attributes"]
    return config, port_map[13133]


def _gateway_config(chart: Path, gateway: Gateway) -> tuple[dict, int]:
    port_map = _listeners(gateway.grpc)
    config = collector_config(_values_config("values-gateway.yaml", chart), port_map)
    config["exporters"]["otlp_grpc/jaeger"]["endpoint"] = f"127.0.0.1:{gateway.jaeger_otlp}"
    return config, port_map[13133]


def _share_of_the_rest(chart: Path) -> float:
    policies = _values_config("values-gateway.yaml", chart)["processors"]["tail_sampling"]["policies"]
    rest = next(p for p in policies if p["type"] == "probabilistic")
    return rest["probabilistic"]["sampling_percentage"] / 100


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, built: Built, chart: Path) -> Iterator[tuple[int, list[Gateway]]]:
    work = tmp_path_factory.mktemp("topology")
    running = RunningStack(work, {})
    gateways = [Gateway(free_port(), free_port(), free_port()) for _ in range(2)]
    agent_http = free_port()
    try:
        for i, gateway in enumerate(gateways):
            running.start_process(
                f"jaeger-{i}", [str(built.jaeger), "--config", f"file:{_assets.collector_dir() / 'jaeger.yaml'}"],
                {"JAEGER_HOST": "127.0.0.1", "JAEGER_QUERY_PORT": str(gateway.jaeger_query),
                 "JAEGER_QUERY_GRPC_PORT": str(free_port()), "JAEGER_OTLP_GRPC_PORT": str(gateway.jaeger_otlp),
                 "JAEGER_HEALTH_PORT": str(free_port()), "JAEGER_METRICS_PORT": str(free_port())},
                f"http://127.0.0.1:{gateway.jaeger_query}/api/services", 90)
            config, health = _gateway_config(chart, gateway)
            path = work / f"gateway-{i}.yaml"
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            running.start_process(f"gateway-{i}", [str(built.collector), "--config", f"file:{path}"],
                                  {"MY_POD_IP": "127.0.0.1", "VICTORIALOGS_URL": "http://127.0.0.1:9"},
                                  f"http://127.0.0.1:{health}/", 90)
        config, health = _agent_config(chart, agent_http, gateways)
        path = work / "agent.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        running.start_process("agent", [str(built.collector), "--config", f"file:{path}"],
                              {"MY_POD_IP": "127.0.0.1", "K8S_NODE_NAME": "local"}, f"http://127.0.0.1:{health}/", 90)
        yield agent_http, gateways
    finally:
        running.stop()


def _emit(agent_http: int) -> tuple[set[str], set[str]]:
    """TRACES traces of SPANS_PER_TRACE spans through the SDK's OTLP/HTTP exporter; (error ids, other ids)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
        endpoint=f"http://127.0.0.1:{agent_http}/v1/traces")))
    tracer = provider.get_tracer("topology-test")
    errors, others = set(), set()
    rng = random.Random(14)
    try:
        for n in range(TRACES):
            with tracer.start_as_current_span("GET /orders") as root:
                with tracer.start_as_current_span("SELECT orders"):
                    pass
                with tracer.start_as_current_span("charge") as child:
                    if n % ERROR_EVERY == 0:
                        child.set_status(Status(StatusCode.ERROR, "card declined"))
                    child.set_attribute("attempt", rng.randint(1, 3))
                trace_id = format(root.get_span_context().trace_id, "032x")
            (errors if n % ERROR_EVERY == 0 else others).add(trace_id)
    finally:
        provider.shutdown()
    return errors, others


def test_traces_stay_whole_on_one_gateway_errors_are_kept_and_the_rest_sampled(
        topology: tuple[int, list[Gateway]], chart: Path) -> None:
    agent_http, gateways = topology
    errors, others = _emit(agent_http)

    def every_error_trace_whole() -> list[dict[str, int]] | None:
        landed = [g.traces() for g in gateways]
        kept = {t: n for found in landed for t, n in found.items()}
        return landed if all(kept.get(t) == SPANS_PER_TRACE for t in errors) else None

    # decision_wait (10 s as shipped) + batching, on a loaded machine
    landed = wait_for(every_error_trace_whole, 90, "every error trace kept whole")
    both = set(landed[0]) & set(landed[1])
    assert not both, f"{len(both)} traces were split across the gateways"
    assert all(landed), "load_balancing sent every trace to one gateway"
    kept = {t: n for found in landed for t, n in found.items()}
    assert all(n == SPANS_PER_TRACE for n in kept.values()), "a kept trace lost spans"
    assert set(kept) <= errors | others
    share = len(set(kept) & others) / len(others)
    expected = _share_of_the_rest(chart)
    # binomial over 240 traces: the band is ~4 standard deviations each side of 10 %
    assert expected / 3 <= share <= expected * 2.2, f"kept {share:.1%} of the non-error traces, configured {expected:.0%}"
