"""The ``otel-distro`` command: demo, doctor, verify, collector check."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from otel_distro.settings import child_environment

_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


_TRAFFIC: Sequence[tuple[str, str]] = (
    ("GET", "/items"), ("GET", "/items/1"), ("GET", "/items/2"), ("GET", "/items/7"),
    ("POST", "/orders?item_id=1&quantity=2"), ("GET", "/slow?ms=40"), ("GET", "/fail"),
    ("GET", "/items/1"), ("GET", "/items"), ("POST", "/orders?item_id=2&quantity=1"),
)


def _drive(base: str, requests: int, seconds: float,
           report: Callable[[int, int], None]) -> int:
    sent = 0
    deadline = time.monotonic() + seconds
    while sent < requests and time.monotonic() < deadline:
        method, path = _TRAFFIC[sent % len(_TRAFFIC)]
        _request(base + path, method=method)
        sent += 1
        if sent % 5 == 0 or sent == requests:
            report(sent, requests)
    return sent


def _count_lines(path: Path) -> int:
    """Spans or records in an OTLP JSON lines file (one export request per line)."""
    import json

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


def _print_table(rows: Iterable[Sequence[str]], headers: Sequence[str]) -> None:
    table = [list(headers)] + [list(r) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for n, row in enumerate(table):
        print("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def demo(requests: int, seconds: float, out_dir: Path | None) -> int:
    workdir = out_dir or Path(tempfile.mkdtemp(prefix="otel-distro-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port, metrics_port = _free_port(), _free_port()
    instrument = shutil.which("opentelemetry-instrument",
                              path=str(Path(sys.executable).parent)) or "opentelemetry-instrument"
    env = child_environment({
        "OTEL_PYTHON_DISTRO": "otel_distro",
        "OTEL_SERVICE_NAME": "shop-demo",
        "OTEL_DISTRO_ENVIRONMENT": "demo",
        "OTEL_TRACES_EXPORTER": "file",
        "OTEL_LOGS_EXPORTER": "file",
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_EXPORTER_PROMETHEUS_PORT": str(metrics_port),
        "OTEL_DISTRO_FILE_EXPORT_DIR": str(workdir),
        "OTEL_BSP_SCHEDULE_DELAY": "500",
        "PYTHONPATH": str(_EXAMPLES.parent),
    })
    argv = [instrument, sys.executable, "-m", "uvicorn", "examples.fastapi_app.main:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    print(f"otel-distro demo: starting the example shop under opentelemetry-instrument "
          f"on 127.0.0.1:{port}")
    log_path = workdir / "service.log"
    with open(log_path, "wb") as service_log:
        process = subprocess.Popen(argv, env=env, stdout=service_log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        try:
            base = f"http://127.0.0.1:{port}"
            if not _wait_ready(base + "/health", process):
                print(f"the service did not start; its output is in {log_path}")
                return 1
            sent = _drive(base, requests, seconds, _progress)
            print()
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics",
                                        timeout=10) as response:
                exposition = response.read().decode()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
    stats = route_stats(exposition)
    print(f"\n{sent} requests sent. What the telemetry says "
          f"(read back from http://127.0.0.1:{metrics_port}/metrics):\n")
    _print_table(
        ((route, f"{s.count:.0f}", f"{s.quantile(0.5) * 1000:.1f} ms",
          f"{s.quantile(0.95) * 1000:.1f} ms", f"{s.errors:.0f}")
         for route, s in sorted(stats.items())),
        ("route", "requests", "p50", "p95", "5xx errors"))
    spans = _count_lines(workdir / "traces.jsonl")
    records = _count_lines(workdir / "logs.jsonl")
    print(f"\n  traces: {spans} spans in {workdir / 'traces.jsonl'} (OTLP JSON)")
    print(f"  logs:   {records} records in {workdir / 'logs.jsonl'}, each with its trace id")
    print("\nPoint OTEL_EXPORTER_OTLP_ENDPOINT at a Collector to send the same to "
          "Prometheus, Jaeger and Grafana (see collector/).")
    return 0 if stats and spans else 1


def run_doctor(as_json: bool, app_module: str | None, probe_timeout: float) -> int:
    import json

    from otel_distro import doctor

    report = doctor.diagnose(app_module=app_module, probe_timeout=probe_timeout)
    print(json.dumps(report.as_dict(), indent=2) if as_json else doctor.render(report))
    return 1 if report.problems else 0


def run_verify(args: argparse.Namespace) -> int:
    import json

    from otel_distro import verify

    def progress(done: int, total: int) -> None:
        if not args.json:
            sys.stderr.write(f"\r  verifying: {done}/{total} requests")
            sys.stderr.flush()

    outcome = verify.run(
        args.url, paths=args.paths or ["/"], requests=args.requests, seconds=args.seconds,
        thresholds=verify.Thresholds(args.p95_ms, args.max_error_ratio),
        ready_path=args.ready_path, metrics_url=args.metrics_url,
        prometheus_url=args.prometheus_url,
        series=args.series or ["http_server_request_duration_seconds"], timeout=args.timeout,
        progress=progress)
    if not args.json:
        sys.stderr.write("\n")
    print(json.dumps(outcome.as_dict(), indent=2) if args.json else verify.render(outcome))
    return outcome.status


def collector_check(path: Path) -> int:
    """Print each problem of an otelcol config; 0 when there is no error, 1 otherwise."""
    from otel_distro.collector_check import check_config

    problems = check_config(path)
    for problem in problems:
        print(f"{problem.severity}: {problem.message}")
    errors = [p for p in problems if p.severity == "error"]
    print(f"{path}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-distro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="run the example service and show its telemetry")
    run_demo.add_argument("--requests", type=int, default=200, help="requests to send (bounded)")
    run_demo.add_argument("--seconds", type=float, default=60.0, help="longest traffic run")
    run_demo.add_argument("--out", type=Path, default=None, help="folder for traces and logs")
    doctor = commands.add_parser("doctor", help="show the effective configuration and its problems")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--app", metavar="MODULE", help="import this module first, as the service would")
    doctor.add_argument("--probe-timeout", type=float, default=2.0, help="seconds for the OTLP probe")
    verify = commands.add_parser("verify", help="deployment gate: readiness, metrics, latency, errors")
    verify.add_argument("url", help="base URL of the service, e.g. http://canary:8000")
    verify.add_argument("--path", dest="paths", action="append", default=None,
                        help="path to load (repeatable; default /)")
    verify.add_argument("--requests", type=int, default=50, help="requests to send (bounded)")
    verify.add_argument("--seconds", type=float, default=60.0, help="longest load run")
    verify.add_argument("--p95-ms", type=float, default=1000.0, help="p95 latency threshold")
    verify.add_argument("--max-error-ratio", type=float, default=0.01, help="5xx/failed ratio threshold")
    verify.add_argument("--ready-path", default="/health/ready", help="readiness route")
    verify.add_argument("--metrics-url", help="a Prometheus-format endpoint to check for the series")
    verify.add_argument("--prometheus-url", help="a Prometheus server to query for the series")
    verify.add_argument("--series", action="append", default=None,
                        help="series that must exist (repeatable; default the HTTP duration)")
    verify.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    verify.add_argument("--json", action="store_true", help="machine-readable output")
    collector = commands.add_parser("collector", help="Collector configuration tools")
    collector_commands = collector.add_subparsers(dest="collector_command", required=True)
    check = collector_commands.add_parser("check", help="check an otelcol config file")
    check.add_argument("path", type=Path)
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return run_doctor(args.json, args.app, args.probe_timeout)
    if args.command == "verify":
        if args.requests < 1 or args.seconds <= 0 or args.timeout <= 0 or not (
                0 <= args.max_error_ratio <= 1) or args.p95_ms <= 0:
            parser.error("--requests, --seconds, --timeout and --p95-ms must be positive; "
                         "--max-error-ratio within 0..1")
        return run_verify(args)
    if args.command == "collector":
        return collector_check(args.path)
    if args.command == "demo":
        if args.requests < 1 or args.seconds <= 0:
            parser.error("--requests and --seconds must be positive")
        return demo(args.requests, args.seconds, args.out)
    return 2


if __name__ == "__main__":
    sys.exit(main())
