"""Live, with the real distro: the example shop under opentelemetry-instrument (Prometheus
pull endpoint) → real Prometheus (shipped rules, fast overlay of otel_distro/stack.py) →
real Alertmanager (shipped routing) → local Slack, PagerDuty, webhook and SMTP sinks.

The service's traffic includes AI calls through the real openai client and
opentelemetry-instrumentation-genai-openai to the local OpenAI-compatible server
(examples/genai_app/llm_server.py: priced models, an unpriced one, a failing one) and
the business KPIs (POST /orders); next to it runs the example Celery worker
(examples/celery_worker, filesystem broker, its own pull endpoint, job ``shop-worker``).
Every dashboard panel query, ``$service`` filled in with both services (the variable is
multi-value), must return data from them, except the panels of NO_DATA. Every alert here is caused by
the real service, except the webhook's (an alert without severity, posted to
Alertmanager's API as an external probe would, since no shipped rule lacks a severity).

The tests run in file order on one module-scoped stack: traffic → dashboards →
error/warning (Slack) and info (email) firing then resolved once the failing/unpriced
calls stop → critical (PagerDuty + Slack) by stopping the service and restarting it on
the same ports → webhook.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from otel_distro import stack as stack_
from tests.collector.conftest import DASHBOARDS, Sinks, dashboard_gaps, wait_for
from tests.collector.test_live import AGENT_PANELS
from tests.conftest import BIN, ROOT, Service, free_port, http_get, telemetry_env

pytestmark = pytest.mark.integration

SERVICE = "shop"
WORKER = "shop-worker"
# Both services picked in the dashboards' multi-value `service` variable, as Grafana renders it
# in a regex matcher.
SERVICES = f"({SERVICE}|{WORKER})"
TASKS = "examples.celery_worker.tasks"

_COLLECTOR_SELF = ("otelcol_* is the Collector's own telemetry; this test scrapes the service directly, without a "
                   "Collector (test_stack_up.py has these panels through the Collector)")
_SPANMETRICS = ("traces_span_metrics_* come from the Collector's span_metrics connector; this test has no "
                "Collector (test_stack_up.py has these panels through it)")

# Panels (dashboard uid, panel title, refId) that cannot have data in this test, and why.
NO_DATA = {
    **AGENT_PANELS,
    ("otel-distro-api", "Traffic vs same hour yesterday", "B"):
        "offset 1d needs a day of history; the test Prometheus is seconds old",
    ("otel-distro-api", "Span calls by operation (span metrics)", "A"): _SPANMETRICS,
    ("otel-distro-api", "Span p95 duration by operation (span metrics)", "A"): _SPANMETRICS,
    ("otel-distro-system", "Collector: accepted and refused spans", "A"): _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: accepted and refused spans", "B"): _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: failed sends and queue usage", "A"): _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: failed sends and queue usage", "B"): _COLLECTOR_SELF,
}

# One cycle of the dashboards' traffic: 2 failures in 32 requests (6 %: HTTPErrorRatioHigh
# at error severity, between the 5 % and 10 % thresholds), one LLM call in five failing,
# one unpriced model, cached prompt tokens (cache savings), orders on two channels.
_ASK = "/ask?" + urllib.parse.urlencode({"model": "gpt-4o-mini", "question": "cached=8 what does "
                                         "OpenTelemetry give a Python service in production today"})
MIXED: Sequence[tuple[str, str]] = (
    ("GET", "/items"), ("POST", "/ask?model=gpt-4o-mini"), ("GET", "/items/1"), ("GET", "/health/ready"),
    ("POST", "/orders?item_id=1&quantity=2&channel=web"), ("GET", "/items/9"), ("GET", "/fail"),
    ("GET", "/items/2"), ("POST", "/ask?model=gpt-4o"), ("GET", "/slow?ms=20"), ("GET", "/items"),
    ("POST", "/orders?item_id=2&quantity=1&channel=mobile"), ("GET", "/items/1"), ("POST", _ASK),
    ("GET", "/items"), ("GET", "/items/2"), ("POST", "/ask?model=local-unknown"), ("GET", "/health/ready"),
    ("GET", "/items/1"), ("GET", "/items"), ("POST", "/ask?model=fail-model"), ("GET", "/items/2"),
    ("POST", "/orders?item_id=1&quantity=1&channel=web"), ("GET", "/items"), ("GET", "/items/1"),
    ("GET", "/slow?ms=20"), ("GET", "/items/2"), ("GET", "/items"), ("GET", "/health/ready"),
    ("GET", "/items/1"), ("POST", "/ask?model=gpt-4o-mini"), ("GET", "/items"),
)
# Healthy traffic while waiting for the resolved notifications: priced AI calls and
# orders go on, the failures and the unpriced model stop.
HEALTHY: Sequence[tuple[str, str]] = (
    ("GET", "/items"), ("POST", "/ask?model=gpt-4o-mini"), ("GET", "/items/1"),
    ("POST", "/orders?item_id=1&quantity=1&channel=web"), ("GET", "/health/ready"),
)


class Shop:
    """The example service under opentelemetry-instrument; stoppable and restartable on its ports."""

    def __init__(self, work: Path, llm_base_url: str, otlp_endpoint: str) -> None:
        self.work = work
        self.port, self.metrics_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = telemetry_env(otlp_endpoint, OTEL_SERVICE_NAME=SERVICE,
                                 OTEL_METRICS_EXPORTER="otlp,prometheus",
                                 OTEL_EXPORTER_PROMETHEUS_PORT=str(self.metrics_port),
                                 OPENAI_BASE_URL=llm_base_url, OPENAI_API_KEY="local-test-key")
        self.service: Service | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        self.service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                                "examples.fastapi_app.main:app", "--host", "127.0.0.1",
                                "--port", str(self.port), "--log-level", "warning"],
                               self.env, self.work / f"service-{self.starts}.log")
        self.service.wait_http(f"{self.base}/health")
        self.service.wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def drive(self, cycle: Sequence[tuple[str, str]], seconds: float, limit: int = 5000) -> int:
        """Bounded traffic (time and count); returns the requests sent."""
        deadline = time.monotonic() + seconds
        sent = 0
        while sent < limit and time.monotonic() < deadline:
            method, path = cycle[sent % len(cycle)]
            http_get(self.base + path, method=method)
            sent += 1
            time.sleep(0.005)
        return sent


class Worker:
    """The example Celery worker (filesystem broker) with its own Prometheus pull endpoint."""

    def __init__(self, work: Path, otlp_endpoint: str) -> None:
        self.work = work
        self.metrics_port = free_port()
        self.env = telemetry_env(otlp_endpoint, OTEL_SERVICE_NAME=WORKER,
                                 OTEL_METRICS_EXPORTER="prometheus",
                                 OTEL_EXPORTER_PROMETHEUS_PORT=str(self.metrics_port),
                                 CELERY_FS_BROKER_DIR=str(work / "broker"), EXAMPLE_RETRY_DELAY="0.2")
        # solo pool: tasks run in the process that serves the pull endpoint
        self.service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", TASKS,
                                "worker", "--pool=solo", "--loglevel=WARNING", "--without-mingle",
                                "--without-gossip", "--without-heartbeat"],
                               self.env, work / "worker.log")

    def wait_ready(self) -> None:
        self.service.wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def send_order(self) -> None:
        """One order through the worker: a task that succeeds, one that fails, one that retries."""
        env = {k: v for k, v in self.env.items() if not k.startswith("OTEL_")}
        done = subprocess.run([sys.executable, "-m", "examples.celery_worker.send"], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def stop(self) -> None:
        self.service.stop()


class Live:
    def __init__(self, local: stack_.LocalStack, sinks: Sinks, shop: Shop, worker: Worker) -> None:
        self.local = local
        self.sinks = sinks
        self.shop = shop
        self.worker = worker

    def query(self, expr: str) -> list[dict]:
        url = f"{self.local.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as response:
            data = json.loads(response.read())
        assert data["status"] == "success", data
        return data["data"]["result"]

    def diagnostics(self) -> str:
        try:
            with urllib.request.urlopen(f"{self.local.prometheus_url}/api/v1/alerts", timeout=5) as resp:
                alerts = json.loads(resp.read())["data"]["alerts"]
            firing = ", ".join(f"{a['labels'].get('alertname')}[{a['labels'].get('severity')}]={a['state']}"
                               for a in alerts)
        except (OSError, ValueError) as exc:
            firing = f"unavailable: {exc}"
        return f"Prometheus alerts: {firing}\n{self.sinks.summary()}"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, sinks: tuple[Sinks, int, int]) -> Iterator[Live]:
    if stack_.binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed (.ci/run installs them)")
    pytest.importorskip("openai", reason="the example's /ask uses the openai client")
    from examples.genai_app import llm_server
    from tests.otlp_test_receiver import OtlpTestReceiver

    collected, sink_port, smtp_port = sinks
    work = tmp_path_factory.mktemp("live-distro")
    llm = llm_server.start("127.0.0.1", 0)
    receiver = OtlpTestReceiver().start()
    shop = Shop(work, llm.base_url, receiver.endpoint)
    worker = local = None
    try:
        worker = Worker(work, receiver.endpoint)
        shop.start()
        worker.wait_ready()
        local = stack_.LocalStack.start(
            work, targets={SERVICE: f"127.0.0.1:{shop.metrics_port}",
                           WORKER: f"127.0.0.1:{worker.metrics_port}"},
            alertmanager_env_=stack_.alertmanager_env(work, f"http://127.0.0.1:{sink_port}", smtp_port),
            prometheus_port=free_port(), alertmanager_port=free_port())
        yield Live(local, collected, shop, worker)
    finally:
        if local is not None:
            local.stop()
        shop.stop()
        if worker is not None:
            worker.stop()
        receiver.stop()
        llm.stop()


# --------------------------------------------------------------------------- dashboards

def test_every_dashboard_panel_has_data_from_the_real_service(live: Live) -> None:
    wait_for(lambda: live.query(f'up{{job="{SERVICE}"}} == 1'), 30, "the shop scraped", live.diagnostics)
    live.worker.send_order()
    live.shop.drive(HEALTHY, 2)  # a healthy start: the 10 s error ratio climbs to 6 %, not past 10 %
    live.shop.drive(MIXED, 10)
    live.worker.send_order()
    wait_for(lambda: live.query(f'count(celery_task_runs_total{{job="{WORKER}"}}) >= 3'), 30,
             "the worker's task metrics scraped", live.diagnostics)
    wait_for(lambda: live.query(f'count_over_time(up{{job="{SERVICE}"}}[1m]) >= 5'), 30,
             "five scrapes of the shop", live.diagnostics)
    wait_for(lambda: live.query(f'job:slo_availability_error_ratio:rate1h{{job="{SERVICE}"}}'), 30,
             "recording rules evaluated", live.diagnostics)

    # the `service` variable: label_values(target_info, job)
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variables["service"]["definition"])
        assert match, variables["service"]["definition"]
        metric, label = match.groups()
        assert {SERVICE, WORKER} <= {s["metric"].get(label) for s in live.query(metric)}, dashboard["uid"]

    empty, unexpected, unknown, seen = dashboard_gaps(live.query, NO_DATA, SERVICES)
    assert not empty, "panels without data from the real service:\n" + "\n".join(empty)
    assert not unexpected, f"panels in NO_DATA now have data, update the list: {unexpected}"
    assert not unknown, f"NO_DATA names panels that do not exist: {unknown}"
    assert len(seen) - len(NO_DATA) >= 30


# --------------------------------------------------------------------------- alerts

def _slack(live: Live, alertname: str, status: str, severities: tuple[str, ...]) -> list[dict]:
    """Slack posts for ``alertname`` whose alerts all have one of ``severities``."""
    marker = "[FIRING" if status == "firing" else "[RESOLVED"
    found = []
    for body in live.sinks.posts("/slack"):
        for attachment in body.get("attachments", []):
            if not (attachment.get("title", "").startswith(marker)
                    and attachment.get("title", "").endswith(f"] {alertname} {SERVICE}")):
                continue
            levels = {line.split(":", 1)[0] for line in attachment.get("text", "").splitlines()
                      if re.match(r"^(critical|error|warning|info):", line)}
            if levels and levels <= set(severities):
                found.append(body)
    return found


def _pagerduty(live: Live, alertname: str, action: str) -> list[dict]:
    return [b for b in live.sinks.posts("/pagerduty")
            if b.get("event_action") == action and b.get("payload", {}).get("summary", "").startswith(alertname)]


def _mail(live: Live, alertname: str, status: str) -> list:
    marker = "[FIRING" if status == "firing" else "[RESOLVED"
    return [m for m in live.sinks.emails() if m["Subject"].startswith(marker) and alertname in m["Subject"]]


def test_failing_and_unpriced_calls_alert_slack_and_email_then_resolve(live: Live) -> None:
    diag = live.diagnostics
    wait_for(lambda: live.query(f'up{{job="{SERVICE}"}} == 1'), 30, "the shop scraped", diag)
    live.shop.drive(HEALTHY, 1)

    # the cause, kept up until the alerts arrive: /fail, a failing LLM model, an unpriced model
    def firing() -> bool:
        live.shop.drive(MIXED, 0.5, limit=100)
        return bool(_slack(live, "HTTPErrorRatioHigh", "firing", ("error", "warning"))
                    and _slack(live, "LLMErrorRatioHigh", "firing", ("warning",))
                    and _mail(live, "AIUnpricedCalls", "firing"))

    wait_for(firing, 40, "HTTPErrorRatioHigh + LLMErrorRatioHigh (Slack) and AIUnpricedCalls (email) firing",
             diag)
    # error/warning → Slack: HTTP error ratio (6 % of the shop's requests fail)
    fired = _slack(live, "HTTPErrorRatioHigh", "firing", ("error", "warning"))
    assert fired[0]["channel"] == "#alerts"
    assert re.search(r"^(error|warning): shop: .* of HTTP requests fail \(threshold [15]%\)$",
                     fired[0]["attachments"][0]["text"], re.M), fired[0]["attachments"][0]["text"]
    assert fired[0]["attachments"][0]["title_link"].endswith("#httperrorratiohigh")
    assert not _pagerduty(live, "HTTPErrorRatioHigh", "trigger"), "an error-severity alert must not page"
    # warning → Slack: one LLM call in five fails (checked above); info → email: the unpriced model
    mail = _mail(live, "AIUnpricedCalls", "firing")
    assert mail[0]["To"] == "oncall@localhost.invalid"
    assert "local-unknown" in mail[0].as_string()

    # the cause stops: healthy traffic only (priced AI calls and orders go on)
    def resolved() -> bool:
        live.shop.drive(HEALTHY, 0.5, limit=25)
        return bool(_slack(live, "HTTPErrorRatioHigh", "resolved", ("error", "warning"))
                    and _slack(live, "LLMErrorRatioHigh", "resolved", ("warning",))
                    and _mail(live, "AIUnpricedCalls", "resolved"))

    wait_for(resolved, 45, "HTTPErrorRatioHigh + LLMErrorRatioHigh (Slack) and AIUnpricedCalls (email) "
             "resolved", diag)
    assert live.query(f'job:http_server_requests:rate5m{{job="{SERVICE}"}} > 0'), "traffic went on"


def test_service_down_pages_and_resolves_after_a_restart(live: Live) -> None:
    diag = live.diagnostics
    live.shop.stop()
    try:
        page = wait_for(lambda: _pagerduty(live, "ServiceDown", "trigger"), 30,
                        "PagerDuty: ServiceDown trigger", diag)
        assert page[0]["routing_key"] == "local-routing-key-0123456789abcdef"
        assert page[0]["payload"]["severity"] == "critical"
        assert page[0]["links"][0]["href"].endswith("#servicedown")
        slack = wait_for(lambda: _slack(live, "ServiceDown", "firing", ("critical",)), 30,
                         "Slack: ServiceDown firing", diag)
        assert f"{SERVICE} is down (127.0.0.1:{live.shop.metrics_port})" in slack[0]["attachments"][0]["text"]
    finally:
        live.shop.start()  # the same ports: Prometheus scrapes it again
    resolve = wait_for(lambda: _pagerduty(live, "ServiceDown", "resolve"), 30,
                       "PagerDuty: ServiceDown resolve", diag)
    assert resolve[0]["dedup_key"] == page[0]["dedup_key"]
    wait_for(lambda: _slack(live, "ServiceDown", "resolved", ("critical",)), 30, "Slack: ServiceDown resolved", diag)


def _post_alert(live: Live, ends: datetime | None) -> None:
    now = datetime.now(UTC)
    alert = {"labels": {"alertname": "ExternalProbeFailed", "job": SERVICE, "source": "external-probe"},
             "annotations": {"summary": f"the external probe cannot reach {live.shop.base}"},
             "startsAt": (now - timedelta(seconds=5)).isoformat()}
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    request = urllib.request.Request(f"{live.local.alertmanager_url}/api/v2/alerts",
                                     data=json.dumps([alert]).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _webhook(live: Live, status: str) -> list[dict]:
    return [b for b in live.sinks.posts("/webhook") if b.get("status") == status
            and any(a["labels"].get("alertname") == "ExternalProbeFailed" for a in b.get("alerts", []))]


def test_alert_without_severity_reaches_the_webhook_and_resolves(live: Live) -> None:
    # No shipped rule lacks a severity, so this one is posted to Alertmanager's API, as an
    # external probe would; the routing and the webhook receiver are the shipped ones.
    _post_alert(live, ends=None)
    fired = wait_for(lambda: _webhook(live, "firing"), 30, "webhook firing", live.diagnostics)
    assert fired[0]["alerts"][0]["labels"]["job"] == SERVICE
    _post_alert(live, ends=datetime.now(UTC))
    wait_for(lambda: _webhook(live, "resolved"), 30, "webhook resolved", live.diagnostics)
