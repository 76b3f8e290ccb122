"""Live: emitter → real Prometheus (shipped rules, compressed) → real Alertmanager → local sinks.

Also runs every Grafana panel query, with the `service` variable filled in, against
that Prometheus. The dashboard test runs first (while the emitter is steady); the
alert test then drives faults and checks each receiver gets the firing and the
resolved notification.
"""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from tests.collector.conftest import DASHBOARDS, SERVICE, Stack, dashboard_gaps, wait_for

pytestmark = pytest.mark.integration


_SPANMETRICS = ("traces_span_metrics_* come from the Collector's span_metrics connector; this test has no "
                "Collector (test_stack_up.py has these panels through it)")
_COLLECTOR_SELF = ("otelcol_* is the Collector's own telemetry; this test scrapes the service directly, without a "
                   "Collector (test_stack_up.py has these panels through the Collector)")
_NO_AGENTS = "no agent runs or tool calls in this test's traffic (tests/test_ai_agents.py covers their metrics)"
AGENT_PANELS = {("otel-distro-ai", title, "A"): _NO_AGENTS for title in (
    "Agent runs per second by agent (errors apart)", "Agent error ratio by agent", "Agent run p95 duration by agent",
    "Cost per agent run (last hour, USD)", "Agent tokens per second by agent and type",
    "Tool calls per second by tool (errors apart)")}

# Panels (dashboard uid, panel title, refId) that cannot have data in this test, and why.
NO_DATA = {
    **AGENT_PANELS,
    ("otel-distro-api", "Traffic vs same hour yesterday", "B"):
        "offset 1d needs a day of history; the test Prometheus is seconds old",
    ("otel-distro-api", "Span calls by operation (span metrics)", "A"):
        _SPANMETRICS,
    ("otel-distro-api", "Span p95 duration by operation (span metrics)", "A"):
        _SPANMETRICS,
    ("otel-distro-system", "Collector: accepted and refused spans", "A"):
        _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: accepted and refused spans", "B"):
        _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: failed sends and queue usage", "A"):
        _COLLECTOR_SELF,
    ("otel-distro-system", "Collector: failed sends and queue usage", "B"):
        _COLLECTOR_SELF,
}


def test_dashboard_queries_return_data(stack: Stack) -> None:
    # enough samples for rate() over 1m and for the recording rules
    wait_for(lambda: stack.query(f'count_over_time(up{{job="{SERVICE}"}}[1m]) >= 5'), 60,
             "five scrapes of the emitter", stack.diagnostics)
    wait_for(lambda: stack.query(f'job:slo_availability_error_ratio:rate1h{{job="{SERVICE}"}}'), 30,
             "recording rules evaluated", stack.diagnostics)

    # the `service` variable: label_values(target_info, job)
    dashboards = [json.loads(p.read_text()) for p in DASHBOARDS]
    for dashboard in dashboards:
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert "service" in variables, f"{dashboard['uid']} has no service variable"
        match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variables["service"]["definition"])
        assert match, variables["service"]["definition"]
        metric, label = match.groups()
        values = {s["metric"].get(label) for s in stack.query(metric)}
        assert SERVICE in values

    empty, unexpected_data, unknown, _ = dashboard_gaps(stack.query, NO_DATA, SERVICE)
    assert not empty, "panels without data:\n" + "\n".join(empty)
    assert not unexpected_data, f"panels listed in NO_DATA now have data, update the list: {unexpected_data}"
    assert not unknown, f"NO_DATA names panels that do not exist: {unknown}"


def _slack(stack: Stack, alertname: str, status: str) -> list[dict]:
    marker = "[FIRING" if status == "firing" else "[RESOLVED"
    return [b for b in stack.sinks.posts("/slack")
            if any(a.get("title", "").startswith(marker) and f"] {alertname} {SERVICE}" in a.get("title", "")
                   for a in b.get("attachments", []))]


def _pagerduty(stack: Stack, alertname: str, action: str) -> list[dict]:
    return [b for b in stack.sinks.posts("/pagerduty")
            if b.get("event_action") == action and alertname in b.get("payload", {}).get("summary", "")]


def _mail(stack: Stack, alertname: str, status: str) -> list:
    marker = "[FIRING" if status == "firing" else "[RESOLVED"
    return [m for m in stack.sinks.emails() if m["Subject"].startswith(marker) and alertname in m["Subject"]]


def _webhook(stack: Stack, alertname: str, status: str) -> list[dict]:
    return [b for b in stack.sinks.posts("/webhook")
            if b.get("status") == status and any(a["labels"].get("alertname") == alertname for a in b["alerts"])]


def _post_alert(stack: Stack, ends: datetime | None) -> None:
    now = datetime.now(UTC)
    alert = {"labels": {"alertname": "ExternalProbeFailed", "job": SERVICE, "source": "external-probe"},
             "annotations": {"summary": "an alert without severity goes to the webhook"},
             "startsAt": (now - timedelta(seconds=5)).isoformat()}
    if ends is not None:
        alert["endsAt"] = ends.isoformat()
    request = urllib.request.Request(f"{stack.am}/api/v2/alerts", data=json.dumps([alert]).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def test_alerts_reach_every_receiver_and_resolve(stack: Stack) -> None:
    diag = stack.diagnostics
    wait_for(lambda: stack.query(f'up{{job="{SERVICE}"}} == 1'), 60, "the emitter scraped", diag)

    # webhook: anything without a severity (here an external probe posting to Alertmanager)
    _post_alert(stack, ends=None)
    fired = wait_for(lambda: _webhook(stack, "ExternalProbeFailed", "firing"), 60, "webhook firing", diag)
    assert fired[0]["alerts"][0]["labels"]["job"] == SERVICE
    _post_alert(stack, ends=datetime.now(UTC))
    wait_for(lambda: _webhook(stack, "ExternalProbeFailed", "resolved"), 60, "webhook resolved", diag)

    # error → Slack (HealthCheckFailing); info → email (AIUnpricedCalls)
    stack.emitter.send("unhealthy")
    stack.emitter.send("unpriced on")
    slack = wait_for(lambda: _slack(stack, "HealthCheckFailing", "firing"), 60, "Slack: HealthCheckFailing firing", diag)
    assert slack[0]["channel"] == "#alerts"
    assert "Health check database of shop is failing" in slack[0]["attachments"][0]["text"]
    mail = wait_for(lambda: _mail(stack, "AIUnpricedCalls", "firing"), 60, "email: AIUnpricedCalls firing", diag)
    assert mail[0]["To"] == "oncall@localhost.invalid"
    assert not _pagerduty(stack, "HealthCheckFailing", "trigger"), "an error-severity alert must not page"
    stack.emitter.send("healthy")
    stack.emitter.send("unpriced off")
    wait_for(lambda: _slack(stack, "HealthCheckFailing", "resolved"), 60, "Slack: HealthCheckFailing resolved", diag)
    wait_for(lambda: _mail(stack, "AIUnpricedCalls", "resolved"), 60, "email: AIUnpricedCalls resolved", diag)

    # critical → PagerDuty + Slack (ServiceDown): stop the service, then bring it back
    stack.emitter.stop()
    page = wait_for(lambda: _pagerduty(stack, "ServiceDown", "trigger"), 60, "PagerDuty: ServiceDown trigger", diag)
    assert page[0]["routing_key"] == "local-routing-key-0123456789abcdef"
    assert page[0]["payload"]["severity"] == "critical"
    assert page[0]["links"][0]["href"].endswith("#servicedown")
    wait_for(lambda: _slack(stack, "ServiceDown", "firing"), 60, "Slack: ServiceDown firing", diag)
    stack.emitter.start()
    resolve = wait_for(lambda: _pagerduty(stack, "ServiceDown", "resolve"), 60, "PagerDuty: ServiceDown resolve", diag)
    assert resolve[0]["dedup_key"] == page[0]["dedup_key"]
    wait_for(lambda: _slack(stack, "ServiceDown", "resolved"), 60, "Slack: ServiceDown resolved", diag)
