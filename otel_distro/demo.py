"""``otel-distro demo``: the example service, its telemetry read back, and an alert delivered.

It starts the example shop under ``opentelemetry-instrument`` on embedded
defaults (Prometheus pull endpoint on a free loopback port, traces and logs to
OTLP JSON files), drives bounded traffic, and prints what the telemetry says,
read back from the real metrics endpoint. If Prometheus and Alertmanager are
installed it also runs them on the shipped configs (fast demo timing, see
otel_distro/stack.py) and shows the alerts that reached the local receivers; when
``otel-distro stack build`` has built the Collector, Jaeger and VictoriaLogs, it runs
the whole stack (otel_distro/stack_up.py) and the shop also sends its traces and logs there.
Everything it starts, it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_distro import _assets
from otel_distro.settings import child_environment

_EXAMPLES = _assets.examples_root() / "examples"


def _request(url: str, method: str = "GET", timeout: float = 10.0) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method),
                                    timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


# ------------------------------------------------------------ reading Prometheus text

@dataclass
class RouteStats:
    """Requests to one route, read back from the histogram on the metrics endpoint."""

    count: float = 0.0
    errors: float = 0.0
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))

    def quantile(self, q: float) -> float:
        """histogram_quantile's linear interpolation inside the bucket that holds q."""
        bounds = sorted(self.buckets)
        if not bounds or self.count == 0:
            return float("nan")
        rank = q * self.count
        lower_bound, lower_count = 0.0, 0.0
        for bound in bounds:
            cumulative = self.buckets[bound]
            if cumulative >= rank:
                if bound == float("inf"):
                    return lower_bound
                inside = cumulative - lower_count
                share = (rank - lower_count) / inside if inside else 0.0
                return lower_bound + (bound - lower_bound) * share
            lower_bound, lower_count = bound, cumulative
        return lower_bound


def route_stats(exposition: str, metric: str = "http_server_request_duration_seconds"
                ) -> dict[str, RouteStats]:
    from prometheus_client.parser import text_string_to_metric_families

    stats: dict[str, RouteStats] = defaultdict(RouteStats)
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if not sample.name.startswith(metric):
                continue
            route = f"{sample.labels.get('http_request_method', '')} {sample.labels.get('http_route', '?')}"
            entry = stats[route]
            if sample.name == metric + "_bucket":
                entry.buckets[float(sample.labels["le"])] += sample.value
            elif sample.name == metric + "_count":
                entry.count += sample.value
                if sample.labels.get("http_response_status_code", "").startswith("5"):
                    entry.errors += sample.value
    return dict(stats)


def _samples(exposition: str) -> Iterator[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value


def ai_costs(exposition: str) -> dict[str, dict[str, float]]:
    """Per model: cost in USD, input and output tokens, unpriced calls."""
    models: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, labels, value in _samples(exposition):
        model = labels.get("gen_ai_request_model", "?")
        if name == "gen_ai_client_cost_total":
            models[model]["usd"] += value
        elif name == "gen_ai_client_token_usage_sum":
            models[model][labels.get("gen_ai_token_type", "?") + "_tokens"] += value
        elif name == "gen_ai_client_unpriced_calls_total":
            models[model]["unpriced"] += value
        elif name == "gen_ai_client_operation_duration_seconds_count":
            models[model]["calls"] += value
    return {m: dict(v) for m, v in models.items()}


def kpis(exposition: str) -> dict[str, float]:
    """The example shop's business figures."""
    figures: dict[str, float] = defaultdict(float)
    for name, labels, value in _samples(exposition):
        if name == "shop_orders_created_total":
            figures[f"orders ({labels.get('channel', '?')})"] += value
        elif name == "shop_cart_value_sum":
            figures["cart value USD"] += value
    return dict(figures)


# ------------------------------------------------------------ demo

def _progress(done: int, total: int, width: int = 30) -> None:
    filled = int(width * done / total)
    sys.stdout.write(f"\r  traffic [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stdout.flush()


def _wait_ready(url: str, process: subprocess.Popen, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            _request(url, timeout=2)
            return True
        except OSError:
            time.sleep(0.1)
    return False


# One cycle of ten: one request in ten fails on purpose (the demo's alert).
_TRAFFIC: Sequence[tuple[str, str]] = (
    ("GET", "/items"), ("GET", "/items/1"), ("POST", "/ask?model=gpt-4o-mini"), ("GET", "/items/7"),
    ("POST", "/orders?item_id=1&quantity=2&channel=web"), ("GET", "/slow?ms=40"), ("GET", "/fail"),
    ("POST", "/ask?model=gpt-4o"), ("GET", "/items"), ("POST", "/orders?item_id=2&quantity=1&channel=mobile"),
)


def _drive(base: str, requests: int, seconds: float,
           report: Callable[[int, int], None], pace: float = 0.0) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < requests and time.monotonic() < deadline:
        method, path = _TRAFFIC[sent % len(_TRAFFIC)]
        _request(base + path, method=method)
        sent += 1
        if sent % 5 == 0 or sent == requests:
            report(sent, requests)
        if pace:
            time.sleep(pace)
    return sent


def _count_lines(path: Path) -> int:
    """Spans or records in an OTLP JSON lines file (one export request per line)."""

    if not path.exists():
        return 0
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        request = json.loads(line)
        for resource in request.get("resourceSpans", request.get("resourceLogs", [])):
            for scope in resource.get("scopeSpans", resource.get("scopeLogs", [])):
                total += len(scope.get("spans", scope.get("logRecords", [])))
    return total


def _first_json_line(path: Path) -> str | None:
    """The service's first JSON console line that carries a trace id."""
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"trace_id"' in line:
            return line if len(line) <= 300 else line[:297] + "..."
    return None


def _print_table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> None:
    table = [list(headers)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for n, row in enumerate(table):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


@contextlib.contextmanager
def _service(argv: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen]:
    """A child process in its own session, stopped with SIGTERM (then SIGKILL) on exit."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)


def _start_stack(resources: contextlib.ExitStack, workdir: Path, metrics_port: int,
                 with_stack: bool) -> tuple[object, object, dict[str, str]] | None:
    """Prometheus + Alertmanager on the shipped configs, if wanted and installed (the whole stack if built):
    (the running stack, its alert sink, the endpoints of the whole stack or {})."""
    if not with_stack:
        return None
    try:
        from otel_distro import stack
    except ImportError:
        return None
    if stack.binaries() is None:
        print("  (Prometheus/Alertmanager not installed: skipping the alerting part; on Debian "
              "apt-get install prometheus prometheus-alertmanager)")
        return None
    try:
        import yaml  # noqa: F401 - the collector extra
    except ImportError:
        print("  (PyYAML not installed: skipping the alerting part; pip install 'otel-distro[collector]')")
        return None
    from otel_distro import stack_build, stack_up

    sink = stack.AlertSink().start()
    resources.callback(sink.stop)
    cluster_port, prometheus_port, alertmanager_port = stack.free_ports(3)
    receivers = stack.alertmanager_env(workdir / "stack", sink.url, cluster_port)
    targets = {"shop-demo": f"127.0.0.1:{metrics_port}"}
    built = stack_build.find_built()
    if built is not None:
        whole = stack_up.start(workdir / "stack", stack_up.choose_ports({}, free=True), built, targets=targets,
                               demo_timing=True, alertmanager_env=receivers)
        resources.callback(whole.stop)
        endpoints = whole.endpoints()
        print(f"  the whole stack runs (otel-distro stack up): Collector {endpoints['otlp_http']}, Jaeger "
              f"{endpoints['jaeger']}, VictoriaLogs {endpoints['victorialogs']}, Prometheus "
              f"{endpoints['prometheus']}, Alertmanager {endpoints['alertmanager']} (demo timing)")
        return whole, sink, endpoints
    local = stack.LocalStack.start(
        workdir / "stack", targets=targets, alertmanager_env_=receivers,
        prometheus_port=prometheus_port, alertmanager_port=alertmanager_port)
    resources.callback(local.stop)
    print(f"  Prometheus {local.prometheus_url} and Alertmanager {local.alertmanager_url} "
          "run the shipped rules and routing (demo timing: 1 s scrapes, 10 s windows, for: 0s)")
    return local, sink, {}


def _wait_for_alerts(sink: object, seconds: float) -> list[tuple[str, dict]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        received = sink.received()  # type: ignore[attr-defined]
        if received:
            time.sleep(2)  # let the rest of the group arrive
            return sink.received()  # type: ignore[attr-defined]
        time.sleep(0.5)
    return []


def _describe_alert(path: str, body: dict) -> Iterator[str]:
    receiver = path.strip("/")
    if receiver == "pagerduty":
        yield f"  PagerDuty  {body.get('event_action', '?')}: {body.get('payload', {}).get('summary', '')}"
    elif receiver == "slack":
        for attachment in body.get("attachments", []) or [body]:
            yield f"  Slack      {body.get('channel', '')}: {attachment.get('title', attachment.get('text', ''))}"
    else:
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            yield (f"  {receiver:<10} {alert.get('status')}: {labels.get('alertname')} "
                   f"[{labels.get('severity', 'none')}]")


def run(requests: int, seconds: float, out_dir: Path | None, *, with_stack: bool = True) -> int:
    workdir = (out_dir or Path(tempfile.mkdtemp(prefix="otel-distro-demo-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    from otel_distro.stack import free_ports

    port, metrics_port, llm_port = free_ports(3)
    instrument = shutil.which("opentelemetry-instrument",
                              path=str(Path(sys.executable).parent)) or "opentelemetry-instrument"
    env = child_environment({
        "OTEL_PYTHON_DISTRO": "otel_distro",
        "OTEL_SERVICE_NAME": "shop-demo",
        "OTEL_DISTRO_ENVIRONMENT": "demo",
        "OTEL_TRACES_EXPORTER": "file",
        "OTEL_LOGS_EXPORTER": "file",
        "OTEL_DISTRO_LOG_FORMAT": "json",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        "OTEL_DISTRO_FILE_EXPORT_DIR": str(workdir),
        "OTEL_BSP_SCHEDULE_DELAY": "500",
        "PYTHONPATH": str(_EXAMPLES.parent),
    })
    argv = [instrument, sys.executable, "-m", "uvicorn", "examples.fastapi_app.main:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    print(f"otel-distro demo: the example shop under opentelemetry-instrument on 127.0.0.1:{port}")
    env.update({"OPENAI_BASE_URL": f"http://127.0.0.1:{llm_port}/v1", "OPENAI_API_KEY": "local-test-key"})
    with contextlib.ExitStack() as resources:
        resources.enter_context(_service(
            [sys.executable, "-m", "examples.genai_app.llm_server", "--port", str(llm_port)],
            child_environment({"PYTHONPATH": str(_EXAMPLES.parent)}), workdir / "llm-server.log"))
        print(f"  a local test LLM server (OpenAI-compatible) answers on 127.0.0.1:{llm_port}")
        alerting = _start_stack(resources, workdir, metrics_port, with_stack)
        endpoints = alerting[2] if alerting else {}
        if endpoints:  # traces and logs to the Collector too; metrics stay pulled (no double counting)
            env.update({"OTEL_TRACES_EXPORTER": "file,otlp", "OTEL_LOGS_EXPORTER": "file,otlp",
                        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints["otlp_http"]})
        process = resources.enter_context(_service(argv, env, workdir / "service.log"))
        base = f"http://127.0.0.1:{port}"
        if not _wait_ready(base + "/health", process):
            print(f"the service did not start; its output is in {workdir / 'service.log'}")
            return 1
        # With Prometheus watching, spread the traffic over a few scrapes.
        pace = 0.05 if alerting else 0.0
        sent = _drive(base, requests, seconds, _progress, pace)
        print()
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            exposition = response.read().decode()
        (workdir / "metrics.txt").write_text(exposition)
        alerts = _wait_for_alerts(alerting[1], 45) if alerting else []
    stats = route_stats(exposition)
    print(f"\n{sent} requests sent. What the telemetry says "
          f"(read back from http://127.0.0.1:{metrics_port}/metrics):\n")
    _print_table(
        ((route, f"{s.count:.0f}", f"{s.quantile(0.5) * 1000:.1f} ms",
          f"{s.quantile(0.95) * 1000:.1f} ms", f"{s.errors:.0f}")
         for route, s in sorted(stats.items())),
        ("route", "requests", "p50", "p95", "5xx errors"))
    costs = ai_costs(exposition)
    if costs:
        print("\nAI calls, priced offline from genai-prices:\n")
        _print_table(
            ((model, f"{c.get('calls', 0):.0f}", f"{c.get('input_tokens', 0):.0f}",
              f"{c.get('output_tokens', 0):.0f}",
              f"${c['usd']:.6f}" if "usd" in c else "unpriced")
             for model, c in sorted(costs.items())),
            ("model", "calls", "input tokens", "output tokens", "cost"))
    figures = kpis(exposition)
    if figures:
        print("\nBusiness KPIs:\n")
        _print_table(((name, f"{value:g}") for name, value in sorted(figures.items())),
                     ("kpi", "value"))
    spans = _count_lines(workdir / "traces.jsonl")
    records = _count_lines(workdir / "logs.jsonl")
    print(f"\n  traces: {spans} spans in {workdir / 'traces.jsonl'} (OTLP JSON)")
    print(f"  logs:   {records} records in {workdir / 'logs.jsonl'}, each with its trace id")
    console = _first_json_line(workdir / "service.log")
    if console:
        print(f"  console: JSON lines in {workdir / 'service.log'}, e.g.\n    {console}")
    if endpoints:
        print(f"  traces and logs were also sent through the Collector to Jaeger ({endpoints['jaeger']}) and "
              f"VictoriaLogs ({endpoints['victorialogs']}); the stack stopped with the demo")
    if alerting:
        print("\nAlerts delivered by Alertmanager to the local receivers:")
        lines = [line for path, body in alerts for line in _describe_alert(path, body)]
        print("\n".join(dict.fromkeys(lines)) if lines else "  none arrived within 45 s")
    print("\nPoint OTEL_EXPORTER_OTLP_ENDPOINT at a Collector to send the same to "
          "Prometheus, Jaeger and Grafana (see collector/).")
    return 0 if stats and spans else 1
