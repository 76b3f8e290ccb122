"""What installed but unused libraries cost at start-up: a FastAPI app with every extra installed, against the
same app with only the ``fastapi`` extra's instrumentation.

    python bench/startup_unused_libraries.py [--runs 10] [--baseline DIR]

Variants, each a fresh ``opentelemetry-instrument python -c <app>`` that builds a FastAPI app, serves one
request in-process (straight through ASGI: no HTTP client imported) and exits (telemetry to a closed port, so
exit takes the distro's 0.5 s unreachable bound):

* ``all``: this checkout, every instrumentation of the test environment installed (the ``all`` extra and more);
  instrumentations of libraries the app never imports wait for that import.
* ``fastapi-only``: the same, with ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` naming every installed
  instrumentation but FastAPI's, which is what ``opentelemetry-instrument`` sees with only the ``fastapi``
  extra installed.
* ``baseline-all`` (with ``--baseline DIR``): another checkout of the distro (``PYTHONPATH=DIR``), e.g. one
  that loads every instrumentation at start-up.

Reported: medians of wall time to exit and of the child's peak RSS (``ru_maxrss``), variants interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

BIN = Path(sys.executable).parent
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
print(len(sys.modules))
"""

def _environment(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PYTHONPATH"))}
    env.update({"OTEL_PYTHON_DISTRO": "otel_distro", "OTEL_PYTHON_CONFIGURATOR": "otel_distro",
                "OTEL_SERVICE_NAME": "startup-bench", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    env.update(extra)
    return env


def _run(env: dict[str, str]) -> tuple[float, float, int]:
    started = time.perf_counter()
    process = subprocess.Popen([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", APP], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd="/")  # not this checkout
    out = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    assert os.waitstatus_to_exitcode(status) == 0
    return wall, usage.ru_maxrss / 1024, int(out.strip() or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--baseline", help="another checkout of the distro, for a baseline-all variant")
    args = parser.parse_args()
    others = sorted({ep.name for ep in entry_points(group="opentelemetry_instrumentor")} - {"fastapi"})
    variants = {"all": _environment({}),
                "fastapi-only": _environment({"OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": ",".join(others)})}
    if args.baseline:
        variants["baseline-all"] = _environment({"PYTHONPATH": args.baseline})
    results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in variants}
    for name, env in variants.items():  # warm-up: byte code written, caches filled
        _run(env)
    for _ in range(args.runs):
        for name, env in variants.items():
            results[name].append(_run(env))
    base_wall = statistics.median(r[0] for r in results["fastapi-only"])
    base_rss = statistics.median(r[1] for r in results["fastapi-only"])
    print(f"{'variant':<14} {'wall s':>8} {'x fastapi-only':>15} {'peak RSS MB':>12} {'+MB':>6} {'modules':>8}")
    for name, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        modules = int(statistics.median(r[2] for r in runs))
        print(f"{name:<14} {wall:>8.3f} {wall / base_wall:>15.3f} {rss:>12.1f} {rss - base_rss:>+6.1f} {modules:>8}")


if __name__ == "__main__":
    main()
