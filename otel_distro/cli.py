"""The ``otel-distro`` command: demo, doctor, verify, stack build/up, collector check."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


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


def collector_check(path: Path | None, cache: Path | None, chart: Path | None) -> int:
    """Print each problem of an otelcol config or Helm values file (default: the shipped otelcol-config.yaml);
    0 when there is no error, 1 otherwise."""
    from otel_distro import _assets
    from otel_distro.collector_check import check_file

    path = path or _assets.collector_dir() / "otelcol-config.yaml"
    problems = check_file(path, cache=cache, chart=chart)
    for problem in problems:
        print(f"{problem.severity}: {problem.message}")
    errors = [p for p in problems if p.severity == "error"]
    print(f"{path}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s)")
    return 1 if errors else 0


def stack_build(cache: Path, as_json: bool) -> int:
    """Build (or find cached) the Collector, Jaeger and VictoriaLogs; print their paths."""
    import json

    from otel_distro import stack_build as build

    try:
        built = build.build(cache, progress=lambda line: print(line, file=sys.stderr, flush=True))
    except build.GoMissing as exc:
        print(f"otel-distro stack build: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"otel-distro stack build: {exc}", file=sys.stderr)
        return 1
    paths = built.as_dict()
    print(json.dumps(paths, indent=2) if as_json else "\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


def _port_overrides(values: Sequence[str]) -> dict[str, int]:
    overrides = {}
    for value in values:
        name, _, port = value.partition("=")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--port {value!r}: expected NAME=PORT with PORT in 1..65535")
        overrides[name.replace("-", "_")] = int(port)
    return overrides


def stack_up(args: argparse.Namespace) -> int:
    """The whole stack on loopback, in the foreground until Ctrl-C/SIGTERM."""
    import json

    from otel_distro import stack_build as build
    from otel_distro import stack_up as up

    try:
        ports = up.choose_ports(_port_overrides(args.port), free=args.free_ports)
    except ValueError as exc:
        print(f"otel-distro stack up: {exc}", file=sys.stderr)
        return 2
    built = build.find_built(args.cache_dir)
    if built is None:
        hint = "" if build.go_available() else " (it needs Go: https://go.dev/dl/)"
        print(f"otel-distro stack up: the Collector, Jaeger and VictoriaLogs are not built in {args.cache_dir}; "
              f"run `otel-distro stack build` first{hint}", file=sys.stderr)
        return 2

    def show(running: up.RunningStack) -> None:
        endpoints = running.endpoints()
        if args.json:
            print(json.dumps({"endpoints": endpoints, "pids": running.pids(), "work": str(running.work)}),
                  flush=True)
        else:
            print("\n".join(f"{name:30} {url}" for name, url in endpoints.items()))
            print("the stack runs until Ctrl-C or SIGTERM", flush=True)

    def on_alert(receiver: str, body: dict) -> None:
        if args.json:
            print(json.dumps({"notification": {"receiver": receiver, "body": body}}), flush=True)
        else:
            alerts = body.get("alerts") or []
            names = sorted({a.get("labels", {}).get("alertname", "?") for a in alerts}) or [str(body)[:120]]
            print(f"alert notification to {receiver}: {', '.join(names)}", flush=True)

    return up.run_until_stopped(ports, built, data_dir=args.data_dir, show=show, on_alert=on_alert,
                                log_retention=args.log_retention,
                                demo_timing=args.demo_timing,
                                report=lambda line: print(line, file=sys.stderr, flush=True))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="otel-distro", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser("demo", help="run the example service and show its telemetry")
    run_demo.add_argument("--requests", type=int, default=200, help="requests to send (bounded)")
    run_demo.add_argument("--seconds", type=float, default=60.0, help="longest traffic run")
    run_demo.add_argument("--out", type=Path, default=None, help="folder for traces and logs")
    run_demo.add_argument("--no-stack", action="store_true",
                          help="do not start Prometheus and Alertmanager even if installed")
    doctor = commands.add_parser("doctor", help="show the effective configuration and its problems")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--app", metavar="MODULE", help="import this module first, as the service would")
    doctor.add_argument("--probe-timeout", type=float, default=2.0, help="seconds for the OTLP and OpAMP probes")
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
    check = collector_commands.add_parser(
        "check", help="check an otelcol config or Helm values file (with the built Collector when there is one)")
    check.add_argument("path", type=Path, nargs="?", default=None,
                       help="the file to check (default: the otelcol-config.yaml shipped with otel-distro)")
    check.add_argument("--cache-dir", type=Path, default=None, help="where `stack build` put the binaries")
    check.add_argument("--chart", type=Path, default=None,
                       help="the opentelemetry-collector chart's folder (values.yaml, values.schema.json), "
                            "for values files: `helm pull open-telemetry/opentelemetry-collector --untar`")
    from otel_distro.stack_build import DEFAULT_CACHE
    from otel_distro.stack_up import DEFAULT_LOG_RETENTION, STANDARD_PORTS

    stack = commands.add_parser("stack", help="build and run the Collector stack locally (no Docker)")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
    build = stack_commands.add_parser("build", help="build (or find cached) the Collector, Jaeger, VictoriaLogs")
    build.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where binaries are built and kept")
    build.add_argument("--json", action="store_true", help="print the paths as JSON")
    up = stack_commands.add_parser("up", help="run the whole stack on 127.0.0.1 until Ctrl-C/SIGTERM")
    up.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="where `stack build` put the binaries")
    up.add_argument("--port", action="append", default=[], metavar="NAME=PORT",
                    help="move one port (repeatable); names: " + ", ".join(
                        f"{name.replace('_', '-')} ({port})" for name, port in STANDARD_PORTS.items()))
    up.add_argument("--free-ports", action="store_true", help="let the OS pick every port not given with --port")
    up.add_argument("--data-dir", type=Path, default=None,
                    help="keep logs, traces' and metrics' data here (default: a temporary folder, removed)")
    up.add_argument("--log-retention", default=DEFAULT_LOG_RETENTION, help="VictoriaLogs -retentionPeriod")
    up.add_argument("--demo-timing", action="store_true",
                    help="1 s scrapes and rule evaluation, rule windows shrunk (demos and tests)")
    up.add_argument("--json", action="store_true", help="print the endpoints as one JSON line")
    args = parser.parse_args(argv)
    if args.command == "stack":
        return stack_build(args.cache_dir, args.json) if args.stack_command == "build" else stack_up(args)
    if args.command == "doctor":
        return run_doctor(args.json, args.app, args.probe_timeout)
    if args.command == "verify":
        if args.requests < 1 or args.seconds <= 0 or args.timeout <= 0 or not (
                0 <= args.max_error_ratio <= 1) or args.p95_ms <= 0:
            parser.error("--requests, --seconds, --timeout and --p95-ms must be positive; "
                         "--max-error-ratio within 0..1")
        return run_verify(args)
    if args.command == "collector":
        return collector_check(args.path, args.cache_dir, args.chart)
    if args.command == "demo":
        if args.requests < 1 or args.seconds <= 0:
            parser.error("--requests and --seconds must be positive")
        from otel_distro.demo import run as run_demo

        return run_demo(args.requests, args.seconds, args.out, with_stack=not args.no_stack)
    return 2


if __name__ == "__main__":
    sys.exit(main())
