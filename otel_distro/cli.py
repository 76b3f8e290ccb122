"""The ``otel-distro`` command: demo, doctor, verify, collector check."""

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


def collector_check(path: Path | None) -> int:
    """Print each problem of an otelcol config (default: the shipped one); 0 when there is no error, 1 otherwise."""
    from otel_distro import _assets
    from otel_distro.collector_check import check_config

    path = path or _assets.collector_dir() / "otelcol-config.yaml"
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
    run_demo.add_argument("--no-stack", action="store_true",
                          help="do not start Prometheus and Alertmanager even if installed")
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
    check.add_argument("path", type=Path, nargs="?", default=None,
                       help="the config to check (default: the otelcol-config.yaml shipped with otel-distro)")
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
        from otel_distro.demo import run as run_demo

        return run_demo(args.requests, args.seconds, args.out, with_stack=not args.no_stack)
    return 2


if __name__ == "__main__":
    sys.exit(main())
