"""Server CPU per request under uvicorn, bare vs instrumented, with a keep-alive load.

    python bench/http_server_cpu.py [--requests 5000] [--rounds 3] [--warmup 20000]

Variants (each a fresh uvicorn process serving examples/fastapi_app on 127.0.0.1):
bare; the upstream opentelemetry-distro with its defaults (OTLP over HTTP to a
local test receiver); otel-distro with all signals at 100% sampling; otel-distro
at 1% sampling. The load is one keep-alive connection sending GET /items/1 a
bounded number of times after a warm-up (--warmup requests, default 20,000:
steady state, past the one full garbage collection that start-up leaves owing);
the figure is the server process's CPU time - every thread's, from the
scheduler's nanosecond account (/proc/<pid>/task/*/schedstat), not the
clock-tick sampled utime/stime - divided by the requests. Variants are interleaved round by
round; medians, their ratios to bare, and the median (and range) of each
round's ratio to that round's bare server are printed.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.otlp_test_receiver import OtlpTestReceiver  # noqa: E402 - the repo's own test receiver

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each live thread of ``pid``, by thread id (the scheduler's exact account)."""
    seconds = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            seconds[int(tid)] = int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):  # the thread ended meanwhile
            continue
    return seconds


def cpu_seconds(pid: int) -> float:
    """CPU seconds of every live thread of ``pid``."""
    return sum(thread_cpu(pid).values())


def variant_env(name: str, endpoint: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"PYTHONPATH": str(ROOT), "OTEL_SERVICE_NAME": "bench",
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    prefix = [str(BIN / "opentelemetry-instrument")]
    if name == "bare":
        return [], env
    if name == "upstream-distro":
        env.update({"OTEL_PYTHON_DISTRO": "distro", "OTEL_PYTHON_CONFIGURATOR": "configurator"})
        return prefix, env
    env.update({"OTEL_PYTHON_DISTRO": "otel_distro"})
    if name == "otel-distro-1pct":
        env.update({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.01"})
    return prefix, env


def run_variant(name: str, requests: int, endpoint: str, warmup: int) -> float:
    prefix, env = variant_env(name, endpoint)
    return load_server(name, [*prefix, str(BIN / "uvicorn")], env, requests, warmup)[0]


def load_server(name: str, launcher: list[str], env: dict[str, str], requests: int,
                warmup: int) -> tuple[float, float]:
    """Serve the example shop with ``launcher`` (the uvicorn command, maybe behind a wrapper), load it;
    return the CPU µs per measured request of all its threads and of its main (event-loop) thread."""
    port = free_port()
    argv = [*launcher, "examples.fastapi_app.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(os.devnull, "wb") as devnull:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=devnull, stderr=devnull,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.1)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # Warm-up past start-up's debts: the first full garbage collection after the
        # imports comes within the first ~10,000 requests once anything collects
        # (~75 ms, once), and would be charged to the measured requests otherwise.
        for _ in range(warmup):
            connection.request("GET", "/items/1")
            connection.getresponse().read()
        before = thread_cpu(server.pid)
        for _ in range(requests):
            connection.request("GET", "/items/1")
            connection.getresponse().read()
        after = thread_cpu(server.pid)
        connection.close()
        total = sum(after.values()) - sum(before.values())
        main = after.get(server.pid, 0.0) - before.get(server.pid, 0.0)  # the main thread's id is the pid
        return total / requests * 1e6, main / requests * 1e6
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20000, help="requests before measuring")
    args = parser.parse_args()
    variants = ["bare", "upstream-distro", "otel-distro", "otel-distro-1pct"]
    results: dict[str, list[float]] = {v: [] for v in variants}
    with OtlpTestReceiver() as receiver:
        for _ in range(args.rounds):
            for name in variants:
                results[name].append(run_variant(name, args.requests, receiver.endpoint, args.warmup))
    bare = statistics.median(results["bare"])
    # Per round, each variant against the bare server of the same round: the
    # machine's drift between rounds cancels out of these.
    print(f"{'variant':<18} {'CPU µs/request':>15} {'x bare':>7}  {'x bare per round: median (min-max)':>36}")
    for name in variants:
        median = statistics.median(results[name])
        paired = [v / b for v, b in zip(results[name], results["bare"], strict=True)]
        print(f"{name:<18} {median:>15.1f} {median / bare:>7.2f}  "
              f"{statistics.median(paired):>20.2f} ({min(paired):.2f}-{max(paired):.2f})")


if __name__ == "__main__":
    main()
