"""End to end through the real stack: the example shop and Celery worker under `opentelemetry-instrument`
send OTLP to `otel-distro stack up` (our built Collector, Jaeger v2, VictoriaLogs, Prometheus, Alertmanager,
all on free loopback ports, demo timing) and everything arrives where the stack promises:

- the traces in Jaeger's query API, with their spans (the shop's request and its LLM client call);
- HTTP metrics, span metrics (span_metrics connector) and the Collector's own metrics in Prometheus, and
  every dashboard panel with data except NO_DATA (each with its reason);
- the log records in VictoriaLogs with their trace ids, which lead to traces in Jaeger;
- an alert caused by real failing requests reaches the stack's local receiver through Alertmanager;
- SIGTERM stops every process the stack started.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_distro.stack_build import Built
from tests.collector.conftest import dashboard_gaps, http_get_json, wait_for
from tests.collector.test_live import AGENT_PANELS
from tests.collector.test_live_distro import HEALTHY, MIXED, SERVICE, SERVICES, TASKS, WORKER, Shop
from tests.conftest import BIN, ROOT, Service, telemetry_env

# a loaded 2-core machine starts the processes one after the other: more than the default 120 s
pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

_FIRST_LINE_TIMEOUT = 150  # a loaded 2-core machine starts five servers one after the other

NO_DATA = {
    **AGENT_PANELS,
    ("otel-distro-api", "Traffic vs same hour yesterday", "B"):
        "offset 1d needs a day of history; the test Prometheus is seconds old",
    ("otel-distro-system", "Collector: failed sends and queue usage", "A"):
        "the Collector creates its otelcol_exporter_send_failed_* counters at the first failed send; "
        "every export here succeeds",
    ("otel-distro-system", "Targets up", "A"):
        "up{job=<service>} exists only for services Prometheus scrapes directly; here they send OTLP to the "
        "Collector (its own targets are up{job=\"otelcol\"|\"otelcol-exporter\"})",
}


class StackUp:
    """`otel-distro stack up --json` as a real process; its stdout lines parsed as they come."""

    def __init__(self, work: Path) -> None:
        self.log = open(work / "stack-up.stderr", "w")
        self.process = subprocess.Popen(
            [str(BIN / "otel-distro"), "stack", "up", "--free-ports", "--demo-timing", "--json",
             "--data-dir", str(work / "stack")], stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        self.lines: queue.Queue[dict] = queue.Queue()
        self.notifications: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.work = work
        try:
            first = self.lines.get(timeout=_FIRST_LINE_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"stack up printed nothing in {_FIRST_LINE_TIMEOUT}s:\n{self.stderr()}")
        if "endpoints" not in first:
            self.stop()
            raise AssertionError(f"stack up did not start: {first}\n{self.stderr()}")
        self.endpoints: dict[str, str] = first["endpoints"]
        self.pids: dict[str, int] = first["pids"]

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                item = json.loads(line)
            except ValueError:
                item = {"text": line}
            if "notification" in item:
                self.notifications.append(item["notification"])
            else:
                self.lines.put(item)
        self.lines.put({"exited": self.process.poll()})

    def stderr(self) -> str:
        if not self.log.closed:  # stop() closes it
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log.close()
        return self.process.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Live:
    def __init__(self, stack: StackUp, shop: Shop, worker: Service, worker_env: dict[str, str]) -> None:
        self.stack = stack
        self.shop = shop
        self.worker = worker
        self.worker_env = worker_env

    def query(self, expr: str) -> list[dict]:
        data = http_get_json(f"{self.stack.endpoints['prometheus']}/api/v1/query?"
                             + urllib.parse.urlencode({"query": expr}))
        assert data["status"] == "success", data
        return data["data"]["result"]

    def jaeger(self, path: str, **params: str) -> dict:
        return http_get_json(f"{self.stack.endpoints['jaeger']}{path}?" + urllib.parse.urlencode(params))

    def logs(self, logsql: str, limit: int = 200) -> list[dict]:
        url = f"{self.stack.endpoints['victorialogs']}/select/logsql/query?" + urllib.parse.urlencode(
            {"query": logsql, "limit": str(limit)})
        with urllib.request.urlopen(url, timeout=10) as response:
            return [json.loads(line) for line in response.read().decode().splitlines() if line.strip()]

    def send_order(self) -> None:
        """Three Celery tasks sent under opentelemetry-instrument (producer spans, then the worker's)."""
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-m",
                               "examples.celery_worker.send"], env={**self.worker_env,
                                                                    "OTEL_SERVICE_NAME": "shop-sender"},
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def diagnostics(self) -> str:
        return f"stack up stderr:\n{self.stack.stderr()}\nnotifications: {len(self.stack.notifications)}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, built: Built) -> Iterator[Live]:
    from tests.collector.conftest import tool

    tool("prometheus")
    pytest.importorskip("openai", reason="the example's /ask uses the openai client")
    from examples.genai_app import llm_server

    work = tmp_path_factory.mktemp("stack-up")
    stack = StackUp(work)
    llm = llm_server.start("127.0.0.1", 0)
    shop = worker = None
    try:
        shop = Shop(work, llm.base_url, stack.endpoints["otlp_http"])
        shop.env.update({"OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "otlp"})
        shop.start = _start_without_pull_endpoint(shop)
        shop.start()
        worker_env = telemetry_env(stack.endpoints["otlp_http"], OTEL_SERVICE_NAME=WORKER,
                                   OTEL_METRICS_EXPORTER="otlp", OTEL_LOGS_EXPORTER="otlp",
                                   CELERY_FS_BROKER_DIR=str(work / "broker"), EXAMPLE_RETRY_DELAY="0.2")
        worker = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", TASKS, "worker",
                          "--pool=solo", "--loglevel=WARNING", "--without-mingle", "--without-gossip",
                          "--without-heartbeat"], worker_env, work / "worker.log")
        yield Live(stack, shop, worker, worker_env)
    finally:
        if shop is not None:
            shop.stop()
        if worker is not None:
            worker.stop()
        llm.stop()
        stack.stop()


def _start_without_pull_endpoint(shop: Shop):
    """Shop.start waits for the Prometheus pull endpoint; here the service pushes OTLP only."""
    def start() -> None:
        shop.starts += 1
        shop.service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                                "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(shop.port),
                                "--log-level", "warning"], shop.env, shop.work / f"service-{shop.starts}.log")
        shop.service.wait_http(f"{shop.base}/health")
    return start


# --------------------------------------------------------------------------- traces

def test_the_shops_trace_is_in_jaeger_with_its_spans(live: Live) -> None:
    # Other tests of the module ask other models of the same shop: look only at traces started from here on.
    since_us = str(int(time.time() * 1e6))
    live.shop.drive((("POST", "/ask?model=gpt-4o-mini"), ("GET", "/items/1")), 2, limit=10)

    def ask_trace() -> dict | None:
        traces = live.jaeger("/api/traces", service=SERVICE, operation="POST /ask", limit="20",
                             start=since_us)["data"]
        return next((t for t in traces if len(t["spans"]) >= 2), None)

    trace = wait_for(ask_trace, 60, "a POST /ask trace with its spans in Jaeger", live.diagnostics)
    spans = trace["spans"]
    assert {s["traceID"] for s in spans} == {trace["traceID"]}
    root = next(s for s in spans if s["operationName"] == "POST /ask")
    children = [s for s in spans if any(r["spanID"] == root["spanID"] for r in s.get("references", []))]
    assert children, [s["operationName"] for s in spans]
    tags = {t["key"]: t["value"] for s in spans for t in s["tags"]}
    assert tags.get("gen_ai.request.model") == "gpt-4o-mini", sorted(tags)


def test_the_workers_task_trace_joins_the_sender_in_jaeger(live: Live) -> None:
    live.send_order()

    def joined() -> dict | None:
        traces = live.jaeger("/api/traces", service=WORKER, limit="50")["data"]
        for trace in traces:
            services = {trace["processes"][s["processID"]]["serviceName"] for s in trace["spans"]}
            if {"shop-sender", WORKER} <= services:
                return trace
        return None

    trace = wait_for(joined, 60, "a Celery trace spanning sender and worker", live.diagnostics)
    assert len(trace["spans"]) >= 2


# --------------------------------------------------------------------------- metrics

def test_http_span_and_collector_metrics_are_in_prometheus(live: Live) -> None:
    live.shop.drive(HEALTHY, 3, limit=60)
    wait_for(lambda: live.query(f'http_server_request_duration_seconds_count{{job="{SERVICE}"}}'), 60,
             "HTTP metrics through the Collector", live.diagnostics)
    calls = wait_for(lambda: live.query(f'traces_span_metrics_calls_total{{job="{SERVICE}"}}'), 60,
                     "span metrics from the span_metrics connector", live.diagnostics)
    assert any(c["metric"].get("span_name", "").startswith("GET /items") for c in calls), calls
    own = wait_for(lambda: live.query('{__name__=~"otelcol_receiver_accepted_spans.*", job="otelcol"}'), 60,
                   "the Collector's own metrics", live.diagnostics)
    assert sum(float(s["value"][1]) for s in own) > 0


def test_every_dashboard_panel_has_data_except_the_listed_ones(live: Live) -> None:
    live.send_order()
    live.shop.drive(HEALTHY, 2)
    live.shop.drive(MIXED, 10)
    live.send_order()
    wait_for(lambda: live.query(f'count(celery_task_runs_total{{job="{WORKER}"}}) >= 3'), 60,
             "the worker's task metrics", live.diagnostics)
    wait_for(lambda: live.query(f'job:slo_availability_error_ratio:rate1h{{job="{SERVICE}"}}'), 60,
             "recording rules evaluated", live.diagnostics)
    wait_for(lambda: live.query(f'count_over_time(traces_span_metrics_calls_total{{job="{SERVICE}"}}[1m]) >= 5'),
             60, "enough span-metric samples for rate()", live.diagnostics)
    empty, unexpected, unknown, seen = dashboard_gaps(live.query, NO_DATA, SERVICES)
    assert not empty, "panels without data through the Collector:\n" + "\n".join(empty)
    assert not unexpected, f"panels in NO_DATA now have data, update the list: {unexpected}"
    assert not unknown, f"NO_DATA names panels that do not exist: {unknown}"
    assert len(seen) - len(NO_DATA) >= 30


# --------------------------------------------------------------------------- logs

def test_log_records_are_in_victorialogs_with_trace_ids_that_lead_to_traces(live: Live) -> None:
    live.shop.drive((("GET", "/items/9"), ("GET", "/items/1")), 2, limit=10)
    records = wait_for(lambda: live.logs(f'"item 9 not found" AND service.name:"{SERVICE}"'), 60,
                       "the shop's warning in VictoriaLogs", live.diagnostics)
    record = records[0]
    assert record["severity_text"] == "WARN", record
    # the Collector's VL-Stream-Fields: one stream per service, the other resource attributes plain fields
    assert record["_stream"] == f'{{service.name="{SERVICE}"}}' and record["process.pid"], record
    trace_id = record.get("trace_id")
    assert trace_id and len(trace_id) == 32, record
    trace = wait_for(lambda: live.jaeger(f"/api/traces/{trace_id}")["data"], 30, "the log line's trace",
                     live.diagnostics)
    assert any(s["operationName"].startswith("GET /items") for s in trace[0]["spans"])


# --------------------------------------------------------------------------- alerts

def test_failing_requests_alert_the_local_receiver_through_alertmanager(live: Live) -> None:
    def alerted() -> list[dict]:
        live.shop.drive(MIXED, 0.5, limit=100)
        return [n for n in live.stack.notifications if "HTTPErrorRatioHigh" in json.dumps(n["body"])]

    found = wait_for(alerted, 90, "HTTPErrorRatioHigh delivered to the local receiver", live.diagnostics)
    assert found[0]["receiver"] in ("/slack", "/pagerduty", "/webhook")


# --------------------------------------------------------------------------- lifecycle

def test_sigterm_stops_every_process(built: Built, tmp_path: Path) -> None:
    stack = StackUp(tmp_path)
    try:
        assert set(stack.pids) == {"victorialogs", "jaeger", "collector", "alertmanager", "prometheus"}
        assert all(_alive(pid) for pid in stack.pids.values())
        health = stack.endpoints["collector_health"]
        assert http_get_json(health).get("status") == "Server available"
    finally:
        code = stack.stop()
    assert code == 0, stack.stderr()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in stack.pids.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [name for name, pid in stack.pids.items() if _alive(pid)]
