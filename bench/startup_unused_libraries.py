"""What installed but unused libraries cost at start-up: a FastAPI app with the ``all`` extra installed, against
the same app with only the ``fastapi`` extra.

    python -m venv /tmp/v-all && /tmp/v-all/bin/pip install -e '.[all]'
    python -m venv /tmp/v-fastapi && /tmp/v-fastapi/bin/pip install -e '.[fastapi]'
    python bench/startup_unused_libraries.py --runs 40 --all /tmp/v-all/bin/python --fastapi /tmp/v-fastapi/bin/python

Each run is a fresh ``opentelemetry-instrument python -c <app>`` that builds a FastAPI app, serves one request
in-process (straight through ASGI: no HTTP client imported), prints how many modules it holds and exits
(telemetry to a closed port). Variants:

* ``all``: the interpreter of an environment with ``otel-distro[all]``: every instrumentation of the extras is
  installed with its library; those the app never imports wait for that import.
* ``fastapi-only``: the interpreter of an environment with ``otel-distro[fastapi]`` only.
* without ``--fastapi``: ``fastapi-only`` is ``all``'s environment with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``
  naming every installed instrumentation but FastAPI's (what ``opentelemetry-instrument`` offers with only that
  extra; the libraries stay installed, so this isolates what the instrumentations cost). Without ``--all``,
  ``all`` is this interpreter's environment (the test extra: more than ``all``).
* ``baseline-all`` (with ``--baseline DIR``): another checkout of the distro on ``all``'s interpreter
  (``PYTHONPATH=DIR``), e.g. one that loads every instrumentation at start-up.

Measured per run: start-up as the wall time until the request was served (the app's line on stdout, so the exit
is not in it), the child's CPU time (user + system, whole process), its peak RSS and module count. Variants run
in a new random order each round after an uncounted warm-up round; reported are medians, and ``all`` against
``fastapi-only`` per round (ratio of times, difference of RSS) with a distribution-free 95% interval of the
median (``baseline-all`` likewise).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_startup import median_ci

APP = """
import asyncio, sys
from fastapi import FastAPI
app = FastAPI()
@app.get("/items/{item_id}")
def item(item_id: int) -> dict:
    return {"id": item_id}
sent = []
async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}
async def send(message):
    sent.append(message)
scope = {"type": "http", "method": "GET", "path": "/items/1", "raw_path": b"/items/1", "query_string": b"",
         "root_path": "", "scheme": "http", "http_version": "1.1", "headers": [], "server": ("bench", 80)}
asyncio.run(app(scope, receive, send))
assert sent[0]["status"] == 200
print(len(sys.modules), flush=True)
"""
ALL, FASTAPI_ONLY = "all", "fastapi-only"


def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    env.update({"OTEL_PYTHON_DISTRO": "otel_distro", "OTEL_PYTHON_CONFIGURATOR": "otel_distro",
                "OTEL_SERVICE_NAME": "startup-bench", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    env.update(extra)
    return env


def _run(python: Path, env: dict[str, str]) -> dict[str, float]:
    started = time.perf_counter()
    process = subprocess.Popen([str(python.parent / "opentelemetry-instrument"), str(python), "-c", APP], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/")  # not this checkout
    line = process.stdout.readline() if process.stdout else b""
    served = time.perf_counter() - started
    if process.stdout:
        process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0 and line.strip(), f"{python}: the app failed"
    return {"served_s": served, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mb": usage.ru_maxrss / 1024,
            "modules": int(line)}


def _instrumentations(python: Path) -> list[str]:
    """The opentelemetry_instrumentor entry points installed for ``python``."""
    listed = subprocess.run([str(python), "-c", "from importlib.metadata import entry_points; "
                             "print(' '.join(ep.name for ep in entry_points(group='opentelemetry_instrumentor')))"],
                            capture_output=True, text=True, check=True)
    return listed.stdout.split()


def _variants(args: argparse.Namespace) -> dict[str, tuple[Path, dict[str, str]]]:
    every = Path(args.all or sys.executable)
    if args.fastapi:
        only = (Path(args.fastapi), _environment({}))
    else:
        others = sorted(set(_instrumentations(every)) - {"fastapi"})
        only = (every, _environment({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(others)}))
    variants = {ALL: (every, _environment({})), FASTAPI_ONLY: only}
    if args.baseline:
        variants["baseline-all"] = (every, _environment({"PYTHONPATH": args.baseline}))
    return variants


def _per_round(results: dict[str, list[dict[str, float]]], name: str, metric: str, ratio: bool) -> str:
    pairs = zip(results[name], results[FASTAPI_ONLY], strict=True)
    values = [a[metric] / b[metric] if ratio else a[metric] - b[metric] for a, b in pairs]
    low, high = median_ci(values)
    unit = "x" if ratio else " MB"
    return f"{statistics.median(values):.3f}{unit} (95% interval {low:.3f}-{high:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--all", metavar="PYTHON", help="interpreter of an environment with otel-distro[all]")
    parser.add_argument("--fastapi", metavar="PYTHON", help="interpreter of an environment with otel-distro[fastapi]")
    parser.add_argument("--baseline", help="another checkout of the distro, for a baseline-all variant")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    variants = _variants(args)
    order = random.Random(args.seed)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    for python, env in variants.values():  # warm-up: byte code written, caches filled
        _run(python, env)
    for _ in range(args.runs):
        names = list(variants)
        order.shuffle(names)
        for name in names:
            results[name].append(_run(*variants[name]))
    print(f"{args.runs} rounds; medians")
    print(f"{'variant':<14} {'served s':>9} {'CPU s':>7} {'peak RSS MB':>12} {'modules':>8}")
    for name, runs in results.items():
        row = {metric: statistics.median(r[metric] for r in runs) for metric in runs[0]}
        print(f"{name:<14} {row['served_s']:>9.3f} {row['cpu_s']:>7.3f} {row['rss_mb']:>12.1f} "
              f"{int(row['modules']):>8}")
    for name in results:
        if name != FASTAPI_ONLY:
            print(f"{name} against fastapi-only, per round: start-up (served) "
                  f"{_per_round(results, name, 'served_s', True)}, CPU {_per_round(results, name, 'cpu_s', True)}, "
                  f"RSS {_per_round(results, name, 'rss_mb', False)}")


if __name__ == "__main__":
    main()
