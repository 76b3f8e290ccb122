"""Start-up cost: import + configure time of otel-distro vs the upstream opentelemetry-distro.

    python bench/bench_startup.py [--runs 15]

Each run is the wall time of ``opentelemetry-instrument python -c pass`` (the
interpreter starts, sitecustomize loads the distro and its configurator, the
instrumentors are loaded, the program runs, telemetry is flushed and shut down
at exit), and of bare ``python -c pass`` for reference. Variants are
interleaved run by run; medians and the ratio ours ÷ upstream are printed.
Both export OTLP/HTTP to the repository's test receiver in this process.

It also times ``import otel_distro; otel_distro.configure()`` against the
upstream ``OpenTelemetryDistro().configure()`` + ``OpenTelemetryConfigurator().configure()``
inside a fresh interpreter with perf_counter (no instrumentors, no exit flush).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402 - the repo's own test receiver

BIN = Path(sys.executable).parent

IN_PROCESS = {
    "otel-distro": ("import time; t = time.perf_counter(); import otel_distro; "
                    "otel_distro.configure(); print(time.perf_counter() - t)"),
    "upstream-distro": ("import time; t = time.perf_counter(); "
                        "from opentelemetry.distro import OpenTelemetryDistro, "
                        "OpenTelemetryConfigurator; OpenTelemetryDistro().configure(); "
                        "OpenTelemetryConfigurator().configure(); print(time.perf_counter() - t)"),
}


def env_for(variant: str, endpoint: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": "startup",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    if variant == "upstream-distro":
        env.update({"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"})
    elif variant == "otel-distro":
        env.update({"OTEL_PYTHON_DISTRO": "otel_distro"})
    return env


def wall(argv: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=120)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return elapsed


def in_process(variant: str, env: dict[str, str]) -> float:
    done = subprocess.run([sys.executable, "-c", IN_PROCESS[variant]], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    variants = ("bare", "upstream-distro", "otel-distro")
    walls: dict[str, list[float]] = {v: [] for v in variants}
    inner: dict[str, list[float]] = {v: [] for v in IN_PROCESS}
    with OtlpTestReceiver() as receiver:
        for _ in range(args.runs):
            for variant in variants:
                env = env_for(variant, receiver.endpoint)
                prefix = [] if variant == "bare" else [str(BIN / "opentelemetry-instrument")]
                walls[variant].append(wall([*prefix, sys.executable, "-c", "pass"], env))
                if variant in IN_PROCESS:
                    inner[variant].append(in_process(variant, env))
    print("opentelemetry-instrument python -c pass, wall time (median of "
          f"{args.runs} runs):")
    for variant in variants:
        print(f"  {variant:<16} {statistics.median(walls[variant]) * 1e3:8.1f} ms")
    ours, theirs = (statistics.median(walls[v]) for v in ("otel-distro", "upstream-distro"))
    bare = statistics.median(walls["bare"])
    print(f"  ours / upstream: {ours / theirs:.2f}x; "
          f"above bare python: ours +{(ours - bare) * 1e3:.0f} ms, upstream +{(theirs - bare) * 1e3:.0f} ms")
    print("import + configure, measured in-process (median):")
    for variant in IN_PROCESS:
        print(f"  {variant:<16} {statistics.median(inner[variant]) * 1e3:8.1f} ms")
    ours, theirs = (statistics.median(inner[v]) for v in ("otel-distro", "upstream-distro"))
    print(f"  ours / upstream: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
