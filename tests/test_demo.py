"""The README's first command: the demo runs the example service and reads its telemetry back."""

from __future__ import annotations

import json
import subprocess

import pytest

from otel_distro.demo import RouteStats, route_stats
from tests.conftest import BIN, ROOT


def test_quantile_interpolates_inside_the_bucket() -> None:
    stats = RouteStats(count=100, buckets={0.1: 50, 0.2: 100, float("inf"): 100})
    assert stats.quantile(0.5) == pytest.approx(0.1)
    assert stats.quantile(0.75) == pytest.approx(0.15)
    assert stats.quantile(0.95) == pytest.approx(0.19)


def test_route_stats_reads_the_prometheus_histogram() -> None:
    exposition = "\n".join([
        "# TYPE http_server_request_duration_seconds histogram",
        'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="500",le="0.1"} 2',
        'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="500",le="+Inf"} 3',
        'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/a",http_response_status_code="500"} 3',
        'http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/a",http_response_status_code="500"} 0.2',
        'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="200",le="0.1"} 5',
        'http_server_request_duration_seconds_bucket{http_request_method="GET",http_route="/a",http_response_status_code="200",le="+Inf"} 5',
        'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/a",http_response_status_code="200"} 5',
        'http_server_request_duration_seconds_sum{http_request_method="GET",http_route="/a",http_response_status_code="200"} 0.1',
        ""])
    (stats,) = route_stats(exposition).values()
    assert (stats.count, stats.errors, stats.buckets[0.1]) == (8, 3, 7)


def _counts_from_exposition(text: str) -> dict[str, tuple[float, float]]:
    """Requests and 5xx per route, read independently of the demo's own code."""
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "http_server_request_duration_seconds_count":
                entry = counts.setdefault(sample.labels["http_route"], [0.0, 0.0])
                entry[0] += sample.value
                if sample.labels["http_response_status_code"].startswith("5"):
                    entry[1] += sample.value
    return {route: (c[0], c[1]) for route, c in counts.items()}


@pytest.mark.integration
def test_demo_runs_and_reports_what_the_metrics_endpoint_said(tmp_path) -> None:
    done = subprocess.run([str(BIN / "otel-distro"), "demo", "--no-stack", "--requests", "60", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "60 requests sent" in done.stdout
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines()
            if line.strip().startswith(("GET /", "POST /"))}
    endpoint = _counts_from_exposition((tmp_path / "metrics.txt").read_text())
    assert set(rows) == set(endpoint)
    for route, (requests, errors) in endpoint.items():
        assert rows[route][2] == f"{requests:.0f}" and rows[route][-1] == f"{errors:.0f}", route
    assert endpoint["/fail"] == (6, 6) and endpoint["/items/{item_id}"][1] == 0
    spans = []
    for line in (tmp_path / "traces.jsonl").read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                spans.extend(scope["spans"])
    server_spans = [s for s in spans if s["kind"] == 2]  # SERVER: one per request
    assert len(server_spans) == 60
    assert f"traces: {len(spans)} spans in {tmp_path / 'traces.jsonl'}" in done.stdout
    # The LLM calls are priced, and the KPIs read back, from the same endpoint.
    costs = {line.split()[0]: line.split()[-1] for line in done.stdout.splitlines()
             if line.strip().startswith("gpt-4o")}
    assert set(costs) == {"gpt-4o", "gpt-4o-mini"} and all(c.startswith("$0.") for c in costs.values())
    assert "orders (mobile)  6" in done.stdout and "orders (web)     6" in done.stdout


@pytest.mark.integration
def test_demo_shows_an_alert_delivered_by_alertmanager(tmp_path) -> None:
    from otel_distro import stack

    if stack.binaries() is None:
        pytest.skip("prometheus and prometheus-alertmanager are not installed; .ci/run installs them")
    done = subprocess.run([str(BIN / "otel-distro"), "demo", "--requests", "200", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=150, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    section = done.stdout.split("Alerts delivered by Alertmanager to the local receivers:")[1]
    assert "HTTPErrorRatioHigh" in section  # 10% of the demo's requests fail on purpose
    assert "none arrived" not in section
