"""The README's first command: the demo runs the example service and reads its telemetry back."""

from __future__ import annotations

import json
import subprocess

import pytest

from otel_distro.cli import RouteStats, route_stats
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


@pytest.mark.integration
def test_demo_runs_and_reports_what_the_telemetry_says(tmp_path) -> None:
    done = subprocess.run([str(BIN / "otel-distro"), "demo", "--requests", "40", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "40 requests sent" in done.stdout
    rows = {line.split()[1]: line.split() for line in done.stdout.splitlines()
            if line.strip().startswith(("GET /", "POST /"))}
    assert rows["/fail"][2] == "4" and rows["/fail"][-1] == "4"  # 4 requests, 4 errors
    assert rows["/items/{item_id}"][-1] == "0"
    spans = []
    for line in (tmp_path / "traces.jsonl").read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                spans.extend(scope["spans"])
    assert len(spans) == 40
    assert f"traces: 40 spans in {tmp_path / 'traces.jsonl'}" in done.stdout
