"""Live, with the real distro: the example service under opentelemetry-instrument → real
Prometheus (shipped rules, fast overlay) → real Alertmanager → a local Slack sink.

The emitter-driven test (test_live.py) covers every panel and alert with
synthetic series; this one proves that what the distro really emits carries the
names the rules and dashboards query.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from otel_distro import stack as stack_
from tests.collector.conftest import COLLECTOR, wait_for
from tests.conftest import BIN, free_port, http_get, telemetry_env

pytestmark = pytest.mark.integration

SERVICE = "shop"
# Metric families the FastAPI example serves (no Celery worker, no Collector here).
SERVED_PREFIXES = ("http_server_", "job:http_server_", "job:slo_", "process_", "cpython_",
                   "health_check_", "up")
_NAME = re.compile(r"(?<![\w\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)(?=\s*[{\[)])")


def _metric_names(expr: str) -> set[str]:
    names = set(_NAME.findall(re.sub(r"\b(by|without)\s*\([^)]*\)", " ", expr)))
    functions = {"sum", "rate", "increase", "histogram_quantile", "max", "by", "count", "avg"}
    return {n for n in names if n not in functions}


def _served_panels():
    for path in sorted((COLLECTOR / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                names = _metric_names(target["expr"])
                if names and all(n.startswith(SERVED_PREFIXES) for n in names) and "offset" not in target["expr"]:
                    yield dashboard["uid"], panel["title"], target["expr"]


@pytest.fixture(scope="module")
def live(tmp_path_factory, request):
    if stack_.binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed (.ci/run installs them)")
    from tests.conftest import Service
    from tests.otlp_test_receiver import OtlpTestReceiver

    work = tmp_path_factory.mktemp("live-distro")
    sink = stack_.AlertSink().start()
    receiver = OtlpTestReceiver().start()
    port, metrics_port = free_port(), free_port()
    service = Service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                       "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                      telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME=SERVICE,
                                    OTEL_METRICS_EXPORTER="otlp,prometheus",
                                    OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port)),
                      work / "service.log")
    local = None
    try:
        service.wait_http(f"http://127.0.0.1:{port}/health")
        local = stack_.LocalStack.start(
            work, targets={SERVICE: f"127.0.0.1:{metrics_port}"},
            alertmanager_env_=stack_.alertmanager_env(work, sink.url, free_port()),
            prometheus_port=free_port(), alertmanager_port=free_port())
        yield local, sink, f"http://127.0.0.1:{port}"
    finally:
        if local is not None:
            local.stop()
        service.stop()
        receiver.stop()
        sink.stop()


def _query(local, expr: str) -> list:
    import urllib.parse
    import urllib.request

    url = f"{local.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["data"]["result"]


def _traffic(base: str, seconds: float) -> None:
    """Bounded mixed traffic, one in ten requests failing, health probed."""
    paths = ["/items", "/items/1", "/items/2", "/health/ready", "/items/9", "/slow?ms=20",
             "/items", "/items/1", "/items/2", "/fail"]
    deadline = time.monotonic() + seconds
    for sent in range(2000):
        if time.monotonic() > deadline:
            break
        http_get(base + paths[sent % len(paths)])
        time.sleep(0.01)


def test_dashboards_have_data_from_the_real_service(live) -> None:
    local, _, base = live
    _traffic(base, 8)
    wait_for(lambda: _query(local, f'count_over_time(up{{job="{SERVICE}"}}[1m]) >= 5'), 60,
             "five scrapes of the service")
    wait_for(lambda: _query(local, f'job:slo_availability_error_ratio:rate1h{{job="{SERVICE}"}}'), 30,
             "recording rules evaluated")
    panels = list(_served_panels())
    assert len(panels) >= 12  # the API and system dashboards' HTTP, process and health panels
    empty = []
    for uid, title, expr in panels:
        filled = (expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
                  .replace("$__range", "1h").replace("$service", SERVICE))
        if not _query(local, filled):
            empty.append(f"{uid} / {title}: {filled}")
    assert not empty, "panels without data from the real service:\n" + "\n".join(empty)


def test_failing_requests_raise_an_alert_that_reaches_slack(live) -> None:
    _local, sink, base = live
    _traffic(base, 6)

    def error_ratio_alert() -> list:
        return [body for _, body in sink.received("/slack")
                if any("HTTPErrorRatioHigh" in a.get("title", "") for a in body.get("attachments", []))]

    fired = wait_for(error_ratio_alert, 60, "HTTPErrorRatioHigh in Slack",
                     lambda: json.dumps(sink.received())[:2000])
    assert SERVICE in fired[0]["attachments"][0]["title"]
