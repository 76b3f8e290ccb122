"""The Express example under the OpenTelemetry JS auto-instrumentation feeds the stack like a Python service.

Real processes: `node --require @opentelemetry/auto-instrumentations-node/register` exporting
OTLP/HTTP to the test receiver; the Python shop under `opentelemetry-instrument` with this distro;
the local OpenAI-compatible server for the LLM call.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from examples.genai_app import llm_server
from otel_distro.metrics import SECONDS_BUCKETS
from tests.conftest import BIN, ROOT, Service, free_port, http_get, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver, Span

APP = ROOT / "examples" / "express_app"
SERVER = 2  # SpanKind.SERVER in OTLP
CLIENT = 3
STATUS_ERROR = 2
# What docs/nodejs.md tells users to set: local resource detectors only (the cloud ones probe
# metadata endpoints over the network), the instrumentations this service uses.
NODE_ENV = {
    "OTEL_NODE_RESOURCE_DETECTORS": "env,host,os,process,serviceinstance,container",
    "OTEL_NODE_ENABLED_INSTRUMENTATIONS": "http,express,undici,pino,openai,runtime-node",
    "OTEL_RESOURCE_ATTRIBUTES": "service.version=1.4.2,deployment.environment.name=test",
}
OLD_HTTP_ATTRIBUTES = {"http.method", "http.target", "http.status_code", "http.url", "net.host.port"}


def _build_is_stale() -> bool:
    built = APP / "dist" / "server.js"
    if not (APP / "node_modules").is_dir() or not built.exists():
        return True
    return any(src.stat().st_mtime > built.stat().st_mtime for src in (APP / "src").glob("*.ts"))


@pytest.fixture(scope="session")
def express_app() -> Path:
    """The example installed and compiled (`npm ci` runs `tsc` through its prepare script)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js is not installed: the Express example needs node >= 20.6 and npm")
    if _build_is_stale():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=APP, capture_output=True,
                              text=True, timeout=900)
        assert done.returncode == 0, f"npm ci failed in {APP}:\n{done.stdout}\n{done.stderr}"
    return APP


@pytest.fixture
def start_express(express_app: Path, start_service: Any) -> Callable[..., tuple[Service, str]]:
    def start(endpoint: str, **extra: str) -> tuple[Service, str]:
        port = free_port()
        env = telemetry_env(endpoint, OTEL_SERVICE_NAME="storefront", PORT=str(port), **NODE_ENV)
        env.update(extra)
        service = start_service(["node", "--require", "@opentelemetry/auto-instrumentations-node/register",
                                 "dist/server.js"], env, name="express", cwd=express_app)
        base = f"http://127.0.0.1:{port}"
        service.wait_http(base + "/health", timeout=60)
        return service, base

    return start


@pytest.fixture
def shop(receiver: OtlpTestReceiver, start_service: Any) -> str:
    """The Python shop under opentelemetry-instrument with this distro."""
    port = free_port()
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop")
    service = start_service([str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "uvicorn",
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                            env, name="shop")
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    return base


@pytest.fixture
def llm() -> Iterator[llm_server.LLMServer]:
    server = llm_server.start()
    try:
        yield server
    finally:
        server.stop()


def server_spans(receiver: OtlpTestReceiver, name: str, service: str = "storefront") -> list[Span]:
    return [s for s in receiver.spans()
            if s.kind == SERVER and s.name == name and s.resource.get("service.name") == service]


def wait_server_span(receiver: OtlpTestReceiver, name: str, service: str = "storefront", count: int = 1) -> list[Span]:
    return receiver.wait_for(lambda: len(server_spans(receiver, name, service)) >= count
                             and server_spans(receiver, name, service), what=f"{count} SERVER span(s) {name!r}")


def test_server_span_is_named_by_route_template_with_stable_attributes(receiver: OtlpTestReceiver,
                                                                        start_express: Any) -> None:
    _, base = start_express(receiver.endpoint)
    assert http_get(base + "/items/1") == 200
    assert http_get(base + "/items/9") == 404

    spans = wait_server_span(receiver, "GET /items/:itemId", count=2)
    by_status = {s.attributes["http.response.status_code"]: s for s in spans}
    assert set(by_status) == {200, 404}
    ok = by_status[200]
    assert ok.attributes["http.request.method"] == "GET"
    assert ok.attributes["http.route"] == "/items/:itemId"
    assert ok.attributes["url.path"] == "/items/1"
    assert ok.attributes["url.scheme"] == "http"
    assert not OLD_HTTP_ATTRIBUTES & set(ok.attributes)
    assert ok.status_code != STATUS_ERROR and by_status[404].status_code != STATUS_ERROR  # 4xx: client's fault


def test_request_duration_is_in_seconds_with_the_python_buckets(receiver: OtlpTestReceiver,
                                                                 start_express: Any) -> None:
    _, base = start_express(receiver.endpoint)
    assert http_get(base + "/slow?ms=300") == 200

    def slow_point() -> Any:
        return next((p for m in receiver.metric("http.server.request.duration") for p in m.points
                     if p.attributes.get("http.route") == "/slow"), None)

    point = receiver.wait_for(slow_point, what="http.server.request.duration for /slow")
    (metric, *_) = receiver.metric("http.server.request.duration")
    assert (metric.unit, metric.kind) == ("s", "histogram")
    assert point.bounds == list(SECONDS_BUCKETS)
    assert point.count == 1
    assert 0.3 <= point.sum < 5  # seconds, not milliseconds
    assert point.attributes["http.request.method"] == "GET"
    assert point.attributes["http.response.status_code"] == 200


def test_log_records_carry_the_request_trace_ids(receiver: OtlpTestReceiver, start_express: Any) -> None:
    service, base = start_express(receiver.endpoint)
    assert http_get(base + "/items/2") == 200

    (span,) = wait_server_span(receiver, "GET /items/:itemId")
    record = receiver.wait_for(lambda: next((r for r in receiver.logs() if r.body == "item served"), None),
                               what="the 'item served' log record")
    assert record.trace_id == span.trace_id
    spans_of_trace = {s.span_id for s in receiver.spans() if s.trace_id == span.trace_id}
    assert record.span_id in spans_of_trace
    assert record.severity_text == "info"
    assert record.attributes["itemId"] == 2
    # The same record on stdout: one JSON line with the ids.
    lines = [json.loads(line) for line in service.output().splitlines() if line.startswith("{")]
    (printed,) = [line for line in lines if line.get("msg") == "item served"]
    assert (printed["trace_id"], printed["span_id"]) == (record.trace_id, record.span_id)


def test_resource_attributes_are_those_of_the_python_services(receiver: OtlpTestReceiver, start_express: Any,
                                                              shop: str) -> None:
    _, base = start_express(receiver.endpoint)
    assert http_get(base + "/items/1") == 200
    assert http_get(shop + "/items/1") == 200

    (node,) = wait_server_span(receiver, "GET /items/:itemId")
    (python,) = wait_server_span(receiver, "GET /items/{item_id}", service="shop")
    assert node.resource["service.name"] == "storefront"
    assert node.resource["service.version"] == "1.4.2"
    assert node.resource["deployment.environment.name"] == "test"
    assert node.resource["telemetry.sdk.language"] == "nodejs"
    shared = {"service.name", "service.instance.id", "telemetry.sdk.name", "telemetry.sdk.language",
              "telemetry.sdk.version", "host.name", "host.arch", "os.type", "process.pid",
              "process.runtime.name"}
    assert shared <= set(node.resource)
    assert shared <= set(python.resource)
    assert node.resource["host.name"] == python.resource["host.name"]


def test_error_route_records_a_server_error(receiver: OtlpTestReceiver, start_express: Any) -> None:
    _, base = start_express(receiver.endpoint)
    assert http_get(base + "/fail") == 500

    (span,) = wait_server_span(receiver, "GET /fail")
    assert span.status_code == STATUS_ERROR
    assert span.attributes["http.response.status_code"] == 500

    def failed_point() -> Any:
        return next((p for m in receiver.metric("http.server.request.duration") for p in m.points
                     if p.attributes.get("http.route") == "/fail"), None)

    point = receiver.wait_for(failed_point, what="the /fail duration point")
    assert point.attributes["http.response.status_code"] == 500  # what the HTTP alert rules count
    record = receiver.wait_for(lambda: next((r for r in receiver.logs() if r.body == "request failed"), None),
                               what="the error log record")
    assert record.trace_id == span.trace_id
    assert record.attributes["exception.message"] == "payment backend unavailable"


def test_one_trace_spans_express_and_the_python_shop(receiver: OtlpTestReceiver, start_express: Any,
                                                     shop: str) -> None:
    _, base = start_express(receiver.endpoint, SHOP_URL=shop)
    with urllib.request.urlopen(base + "/shop/items/2", timeout=10) as reply:
        assert json.loads(reply.read())["name"] == "teapot"

    (node,) = wait_server_span(receiver, "GET /shop/items/:itemId")
    (python,) = wait_server_span(receiver, "GET /items/{item_id}", service="shop")
    assert python.trace_id == node.trace_id
    (call,) = [s for s in receiver.spans() if s.span_id == python.parent_span_id]
    assert call.kind == CLIENT
    assert call.resource["service.name"] == "storefront"
    assert call.trace_id == node.trace_id
    assert call.attributes["http.response.status_code"] == 200
    # The client span hangs under the Express request (directly or through its handler spans).
    by_id = {s.span_id: s for s in receiver.spans() if s.trace_id == node.trace_id}
    ancestor = call
    while ancestor.parent_span_id and ancestor.span_id != node.span_id:
        ancestor = by_id[ancestor.parent_span_id]
    assert ancestor.span_id == node.span_id
    assert node.parent_span_id == ""  # the trace starts in Node


def test_llm_call_from_node_gets_genai_semconv_span_and_token_metrics(receiver: OtlpTestReceiver,
                                                                        start_express: Any,
                                                                        llm: llm_server.LLMServer) -> None:
    _, base = start_express(receiver.endpoint, OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="local-test-key")
    request = urllib.request.Request(base + "/ask", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"question": "hello there"}).encode())
    with urllib.request.urlopen(request, timeout=20) as reply:
        answer = json.loads(reply.read())
    # "hello there": 2 words + 3 per message; the reply's words
    assert (answer["input_tokens"], answer["output_tokens"]) == (5, len(llm_server.REPLY.split()))

    (server,) = wait_server_span(receiver, "POST /ask")
    (chat,) = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "chat gpt-4o-mini"],
                                what="the GenAI span")
    assert chat.kind == CLIENT and chat.trace_id == server.trace_id
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert chat.attributes["gen_ai.usage.input_tokens"] == 5
    assert chat.attributes["gen_ai.usage.output_tokens"] == answer["output_tokens"]
    assert "openai" in (chat.attributes.get("gen_ai.provider.name"), chat.attributes.get("gen_ai.system"))

    def token_points() -> dict[str, Any]:
        return {p.attributes["gen_ai.token.type"]: p for m in receiver.metric("gen_ai.client.token.usage")
                for p in m.points}

    points = receiver.wait_for(lambda: len(token_points()) == 2 and token_points(), what="token usage")
    assert points["input"].sum == 5
    assert points["output"].sum == answer["output_tokens"]
    assert points["input"].attributes["gen_ai.request.model"] == "gpt-4o-mini"


# ---------------------------------------------------------------- the real stack

def _stack_collector_config(otlp: str, prometheus: str) -> dict[str, Any]:
    """The shipped otelcol-config.yaml on local ports, without the Jaeger exporter (no Jaeger here)."""
    config = yaml.safe_load((ROOT / "collector" / "otelcol-config.yaml").read_text())
    kept_exporters = {"prometheus", "debug"} | set(config.get("connectors", {}))
    config["receivers"] = {"otlp": {"protocols": {"http": {"endpoint": otlp}}}}
    config["exporters"] = {name: exporter for name, exporter in config["exporters"].items() if name in kept_exporters}
    config["exporters"]["prometheus"]["endpoint"] = prometheus
    config["extensions"] = {}
    config["service"] = {"pipelines": {
        name: {**pipeline, "receivers": [r for r in pipeline["receivers"] if r == "otlp" or r in kept_exporters],
               "exporters": [e for e in pipeline["exporters"] if e in kept_exporters]}
        for name, pipeline in config["service"]["pipelines"].items()}}
    config["service"]["pipelines"] = {name: p for name, p in config["service"]["pipelines"].items() if p["exporters"]}
    return config


API_NO_DATA = {
    ("otel-distro-api", "Traffic vs same hour yesterday", "B"): "offset 1d needs a day of history",
}


@pytest.mark.timeout(480)  # five processes and six bounded waits on a loaded machine
def test_express_through_the_stack_fills_the_api_dashboard_fires_http_alerts_and_prices_llm_calls(
        tmp_path: Path, start_express: Any, llm: llm_server.LLMServer) -> None:
    """Express -> the shipped Collector config (real otelcol) -> Prometheus with the shipped rules (the
    stack's test overlay: short windows, `for: 0s`) -> Alertmanager: HTTPErrorRatioHigh fires for the
    service from real 500s and is delivered, the API dashboard's queries return its series, and its LLM
    calls are priced by the token-cost rules and fill the AI costs dashboard's cost panels."""
    from otel_distro import stack as stack_
    from tests.collector.conftest import dashboard_gaps, fill_variables, panel_targets, wait_for
    from tests.otelcol_process import collector_binary, running_collector
    from tests.test_express_genai_cost import COST_PANELS

    binary = collector_binary()
    if binary is None:
        pytest.skip("the Collector is not built (`otel-distro stack build`; .ci/run builds it where Go is installed)")
    if stack_.binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed (.ci/run installs them)")
    otlp, exporter = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    sink = stack_.AlertSink().start()
    am_env = stack_.alertmanager_env(tmp_path, sink.url, free_port())
    try:
        with running_collector(binary, _stack_collector_config(otlp, exporter), tmp_path, f"http://{otlp}"), \
                stack_.LocalStack.start(tmp_path / "stack", targets={"storefront": exporter}, alertmanager_env_=am_env,
                                        prometheus_port=free_port(), alertmanager_port=free_port()) as local:
            _, base = start_express(f"http://{otlp}", OPENAI_BASE_URL=llm.base_url, OPENAI_API_KEY="local-test-key")

            def query(expr: str) -> list[dict]:
                url = f"{local.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
                with urllib.request.urlopen(url, timeout=10) as reply:
                    return json.loads(reply.read())["data"]["result"]

            def firing() -> list[dict]:
                for _ in range(4):  # the real cause: 500s from the error route, among good requests
                    assert http_get(base + "/fail") == 500 and http_get(base + "/items/1") == 200
                return query('ALERTS{alertname="HTTPErrorRatioHigh", job="storefront", alertstate="firing"}')

            alerts = wait_for(firing, 120, "HTTPErrorRatioHigh firing for storefront")
            assert "warning" in {a["metric"]["severity"] for a in alerts}
            delivered = wait_for(lambda: [body for _, body in sink.received()
                                          if "HTTPErrorRatioHigh" in json.dumps(body) and "storefront" in json.dumps(body)],
                                 60, "the alert delivered by Alertmanager")
            assert delivered

            def api_gaps() -> tuple[list[str], list[Any], set[Any]]:
                empty, unexpected, unknown, _ = dashboard_gaps(query, API_NO_DATA, "storefront")
                return ([gap for gap in empty if gap.startswith("otel-distro-api /")],
                        [key for key in unexpected if key[0] == "otel-distro-api"], unknown)

            # span metrics are flushed every 15 s: rate() over them needs two flushes
            wait_for(lambda: api_gaps() == ([], [], set()), 120, "every API dashboard panel with Express data",
                     lambda: "gaps: " + repr(api_gaps()))

            def priced() -> list[dict]:
                assert http_get(base + "/ask", method="POST") == 200
                return query('job_model_type:gen_ai_token_cost_usd:rate5m{job="storefront"} > 0')

            costs = wait_for(priced, 120, "the token-cost rules pricing the Express LLM calls")
            assert {(c["metric"]["gen_ai_request_model"], c["metric"]["gen_ai_token_type"]) for c in costs} \
                == {("gpt-4o-mini", "input"), ("gpt-4o-mini", "output")}
            # what the AICostPerHourHigh alerts read
            assert wait_for(lambda: query('job:gen_ai_client_cost_usd:increase1h{job="storefront"} > 0'), 60,
                            "the Express LLM cost in the AI cost alerts' series")

            cost_panels = {title: fill_variables(expr, "storefront") for uid, title, _, expr in panel_targets()
                           if uid == "otel-distro-ai" and title in COST_PANELS}
            assert set(cost_panels) == set(COST_PANELS)

            def empty_cost_panels() -> list[str]:
                return [title for title, expr in cost_panels.items() if not query(f"({expr}) > 0")]

            wait_for(lambda: empty_cost_panels() == [], 60, "the AI costs dashboard's cost panels with Express data",
                     lambda: "empty: " + repr(empty_cost_panels()))
    finally:
        sink.stop()
