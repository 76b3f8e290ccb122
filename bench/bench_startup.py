"""Start-up cost: otel-distro against the upstream opentelemetry-distro, wall and CPU time.

    python bench/bench_startup.py [--runs 20] [--baseline DIR ...] [--seed N] [--program CODE]

Two measurements, each in fresh interpreters:

* ``opentelemetry-instrument python -c pass``: the interpreter starts,
  sitecustomize loads the distro and its configurator, every installed
  instrumentor is loaded, the program runs, telemetry is flushed and shut
  down at exit. Plus bare ``python -c pass`` for reference.
* the same start, in steps: a ``sitecustomize`` that does what
  ``opentelemetry-instrument``'s does (``initialize()``) but times, in CPU
  time of the process, loading the distro, running the configurator, loading
  the instrumentors, and the atexit handlers that the start registered (the
  flush and shutdown of the telemetry), then the program between them (with
  what instrumenting on its imports costs: otel-distro's instrumentations are
  applied there) and the interpreter's teardown after the handlers (the
  child's total CPU from ``os.wait4`` less the CPU when they finished). The
  distro's own cost is distro + configure + exit; with a program that imports
  libraries, the upstream distro imports some modules both need while loading
  the instrumentors, so compare the whole process.
* in-process import + configure: ``import otel_distro; otel_distro.configure()``
  against upstream's ``OpenTelemetryDistro().configure()`` +
  ``OpenTelemetryConfigurator().configure()``, timed inside the child from
  before the first import to the return of configure (no instrumentors, no
  exit flush).

Both sides get the same environment: ``OTEL_SERVICE_NAME``, an OTLP/HTTP
endpoint (the repository's test receiver, in this process) and
``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` (the upstream distro's default
is gRPC, whose exporter is not installed). The upstream side runs with its
defaults otherwise: ``OTEL_PYTHON_DISTRO=distro
OTEL_PYTHON_CONFIGURATOR=configurator``, OTLP exporters for traces, metrics
and logs, and under ``opentelemetry-instrument`` every installed instrumentor
(system_metrics and logging included). Ours runs with its defaults: the same
three OTLP exporters, the logs bridge, process metrics, GenAI span metrics,
redaction; its lean ASGI middleware instead of the contrib FastAPI
instrumentor.

Noise: variants are interleaved, in a new random order each round, after one
warm-up round that is not counted (it also writes byte code: the children run
without ``PYTHONDONTWRITEBYTECODE``, as an installed package would have its
``.pyc`` files). Each run records wall time and the child's CPU time
(user + system, from ``os.wait4``; for the in-process figure, the child's
``time.process_time``), which other load on the machine disturbs less.
Reported: medians, interquartile ranges, and ours ÷ upstream both as the ratio
of medians and per round (the median of each round's ratio with a
distribution-free 95% confidence interval, and in how many rounds ours was
cheaper): when the interval holds 1.0 the two are not told apart at that noise.
Children run in an empty working directory, so that ``PYTHONPATH`` decides
which ``otel_distro`` is loaded.

``--program CODE`` runs ``python -c CODE`` instead of ``pass`` in the whole-process and stepwise measurements,
e.g. ``--program "import fastapi"``: the upstream distro imports every installed instrumentor's library at
start-up, otel-distro instruments a library when the program first imports it; with a program that imports
what is installed, both sides load the same instrumentors and libraries.

``--baseline DIR`` (repeatable) adds another copy of the ``otel_distro``
package (e.g. ``git archive <commit> otel_distro | tar -x -C DIR``), run
through ``PYTHONPATH`` with the same entry points, to compare commits in the
same run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402 - the repo's own test receiver

BIN = Path(sys.executable).parent
UPSTREAM = "upstream-distro"
OURS = "otel-distro"

# opentelemetry-instrument's sitecustomize, timed step by step; prints the steps at exit.
PHASES_SITECUSTOMIZE = """\
import atexit, json, time

from opentelemetry.instrumentation import auto_instrumentation

clock = time.process_time
phases = {}


def timed(name, step):
    def run(*args, **kwargs):
        began = clock()
        try:
            return step(*args, **kwargs)
        finally:
            phases[name] = clock() - began
    return run


def report():  # registered before initialize(): runs after the handlers it registers
    phases["exit"] = clock() - phases["exit_began"]
    phases["program"] = phases.pop("exit_began") - phases.pop("initialized")
    phases["reported_at"] = clock()  # the process's CPU so far: the rest of its total is the interpreter's teardown
    print(json.dumps(phases), flush=True)


atexit.register(report)
for name, attribute in (("distro", "_load_distro"), ("configure", "_load_configurators"),
                        ("instrumentors", "_load_instrumentors")):
    setattr(auto_instrumentation, attribute, timed(name, getattr(auto_instrumentation, attribute)))
auto_instrumentation.initialize()
phases["initialized"] = clock()
atexit.register(lambda: phases.__setitem__("exit_began", clock()))  # registered last: runs first
"""
PHASES = ("distro", "configure", "exit", "own", "instrumentors", "program", "teardown")

_CLOCKS = "import os, time; w = time.perf_counter(); c = time.process_time(); "
_REPORT = "; print(time.perf_counter() - w, time.process_time() - c)"
IN_PROCESS = {
    OURS: _CLOCKS + "import otel_distro; otel_distro.configure()" + _REPORT,
    UPSTREAM: _CLOCKS + ("from opentelemetry.distro import OpenTelemetryDistro, OpenTelemetryConfigurator; "
                         "OpenTelemetryDistro().configure(); OpenTelemetryConfigurator().configure()") + _REPORT,
}


def env_for(variant: str, endpoint: str, baselines: dict[str, Path]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OTEL_") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update({"OTEL_SERVICE_NAME": "startup",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    if variant == UPSTREAM:
        env.update({"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"})
    elif variant != "bare":
        env.update({"OTEL_PYTHON_DISTRO": "otel_distro",
                    "PYTHONPATH": str(baselines.get(variant, ROOT))})
    return env


def run(argv: list[str], env: dict[str, str], cwd: str) -> tuple[float, float, str]:
    """Wall time, the child's user + system CPU time (os.wait4), and its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=err)
        watchdog = threading.Timer(120, child.kill)  # a hung child fails the run, not the machine
        watchdog.start()
        try:
            _pid, status, usage = os.wait4(child.pid, 0)
        finally:
            watchdog.cancel()
        elapsed = time.perf_counter() - began
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise RuntimeError(f"{argv}: exit {child.returncode}: {err.read().decode(errors='replace')}")
        return elapsed, usage.ru_utime + usage.ru_stime, out.read().decode()


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, median, q3


def median_ci(values: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval of the median (binomial order statistics)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 1.96 * math.sqrt(n) / 2
    low, high = max(1, math.floor(n / 2 - half)), min(n, math.ceil(1 + n / 2 + half))
    return ordered[low - 1], ordered[high - 1]


def compare(ours: list[dict[str, float]], theirs: list[dict[str, float]], metric: str) -> str:
    """Ours / upstream for one metric: ratio of medians, and per round with a 95% CI."""
    if any(r[metric] <= 0 for r in theirs):
        return "n/a (zero in a round)"
    of_medians = statistics.median(r[metric] for r in ours) / statistics.median(r[metric] for r in theirs)
    per_round = [a[metric] / b[metric] for a, b in zip(ours, theirs, strict=True)]
    low, high = median_ci(per_round)
    cheaper = sum(ratio < 1 for ratio in per_round)
    return (f"{of_medians:.3f}x; per round: median {statistics.median(per_round):.3f}x "
            f"(95% CI {low:.3f}-{high:.3f}), cheaper in {cheaper}/{len(per_round)} rounds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--program", default="pass", help="the code run by python -c (default: pass)")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="a directory holding another otel_distro package")
    args = parser.parse_args()
    baselines = {f"{OURS}@{path.name}": path.resolve() for path in args.baseline}
    ours_like = [OURS, *baselines]
    distros = [UPSTREAM, *ours_like]
    print("Both sides: OTLP/HTTP (http/protobuf) to a local test receiver, OTEL_SERVICE_NAME set, byte code "
          "cached.\n  upstream: OTEL_PYTHON_DISTRO=distro OTEL_PYTHON_CONFIGURATOR=configurator, its defaults "
          "(OTLP traces, metrics, logs;\n  under opentelemetry-instrument every installed instrumentor, "
          "system_metrics and logging included).\n  otel-distro: its defaults (OTLP traces, metrics, logs, "
          "logs bridge, process metrics, GenAI span metrics, redaction).")
    rng = random.Random(args.seed)
    # (kind, variant) -> one dict of measurements (seconds) per run
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    # Children run in an empty folder: ``python -c`` puts its working directory first on
    # sys.path, which would shadow the PYTHONPATH that picks each variant's package.
    with OtlpTestReceiver() as receiver, tempfile.TemporaryDirectory(prefix="bench-startup-") as cwd:
        phases_dir = Path(cwd, "phases")
        phases_dir.mkdir()
        (phases_dir / "sitecustomize.py").write_text(PHASES_SITECUSTOMIZE)
        jobs = [("instrument", v) for v in ["bare", *distros]]
        jobs += [("phases", v) for v in distros] + [("in-process", v) for v in distros]
        for round_ in range(args.runs + 1):
            rng.shuffle(jobs)
            for kind, variant in jobs:
                env = env_for(variant, receiver.endpoint, baselines)
                if kind == "instrument":
                    prefix = [] if variant == "bare" else [str(BIN / "opentelemetry-instrument")]
                    wall, cpu, _ = run([*prefix, sys.executable, "-c", args.program], env, cwd)
                    row = {"wall": wall, "cpu": cpu}
                elif kind == "phases":
                    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(phases_dir), env.get("PYTHONPATH")]))
                    _, cpu, out = run([sys.executable, "-c", args.program], env, cwd)
                    row = json.loads(out.strip().splitlines()[-1])
                    row["own"] = row["distro"] + row["configure"] + row["exit"]
                    row["teardown"] = cpu - row.pop("reported_at")
                else:
                    script = IN_PROCESS[UPSTREAM if variant == UPSTREAM else OURS]
                    _, _, out = run([sys.executable, "-c", script], env, cwd)
                    wall, cpu = map(float, out.split())
                    row = {"wall": wall, "cpu": cpu}
                if round_:  # round 0 warms up caches and writes byte code
                    results.setdefault((kind, variant), []).append(row)

    def table(kind: str, variants: list[str], metrics: tuple[str, ...], title: str, compared: str) -> None:
        print(f"{title} (median [interquartile range] of {args.runs} runs, ms):")
        print(f"  {'variant':<24}" + "".join(f"{m:>26}" for m in metrics))
        for variant in variants:
            cells = []
            for metric in metrics:
                q1, median, q3 = quartiles([r[metric] * 1e3 for r in results[(kind, variant)]])
                cells.append(f"{median:8.1f} [{q1:7.1f}-{q3:7.1f}]")
            print(f"  {variant:<24}" + "".join(f"{c:>26}" for c in cells))
        theirs = results[(kind, UPSTREAM)]
        for variant in ours_like:
            print(f"  {variant} / upstream:")
            for metric in (m for m in metrics if m in compared.split()):
                print(f"    {metric:<5} {compare(results[(kind, variant)], theirs, metric)}")

    table("instrument", ["bare", *distros], ("wall", "cpu"),
          f"opentelemetry-instrument python -c {args.program!r}, whole process (cpu: user+sys)", "wall cpu")
    bare_wall, bare_cpu = (statistics.median(r[m] for r in results[("instrument", "bare")]) for m in ("wall", "cpu"))
    for variant in distros:
        wall, cpu = (statistics.median(r[m] for r in results[("instrument", variant)]) for m in ("wall", "cpu"))
        print(f"  {variant} above bare python: wall +{(wall - bare_wall) * 1e3:.0f} ms, "
              f"cpu +{(cpu - bare_cpu) * 1e3:.0f} ms")
    table("phases", distros, PHASES,
          "the same start by steps, process CPU (own = distro + configure + exit; program: the -c code, with what "
          "instrumenting on its imports costs; teardown: after the exit handlers)",
          "own instrumentors program teardown")
    table("in-process", distros, ("wall", "cpu"),
          "import + configure, timed in-process (cpu: process_time)", "wall cpu")


if __name__ == "__main__":
    main()
