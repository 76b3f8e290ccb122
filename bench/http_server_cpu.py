"""Server CPU per request under uvicorn, bare vs instrumented, with a keep-alive load.

    python bench/http_server_cpu.py [--requests 5000] [--rounds 3] [--warmup 20000] [--block 200]

Variants (each a uvicorn process serving examples/fastapi_app on 127.0.0.1):
bare; the upstream opentelemetry-distro with its defaults (OTLP over HTTP to a
local test receiver); otel-distro with all signals at 100% sampling; otel-distro
at 1% sampling. Each round starts one server per variant and loads them in turn:
one keep-alive connection each, ``GET /items/1`` sent ``--block`` times to one
server before the next one's turn, until each has had --requests, after a
warm-up (--warmup requests each, default 20,000: steady state, past the one full
garbage collection that start-up leaves owing). The figure is each server
process's CPU time - every thread's, from the scheduler's nanosecond account
(/proc/<pid>/task/*/schedstat), not the clock-tick sampled utime/stime - divided
by its requests.

Why in turn: on a shared virtual machine the CPU a request costs drifts by a
third within minutes (other tenants, caches). Servers loaded one after the other
each see a different machine: one such run gave rounds from 0.98x to 1.43x. In
turns of 200 requests (~0.1 s) every server sees the same machine and the
rounds of a run agree within a few percent; a server still runs warm through
its turn, as one serving a steady load does. ``--block 1`` (one request each in
turn) agrees within 1% between rounds, but then every request finds its
server's caches cold from the others' work: bare costs ~1.5x more, and the
ratios are those of that machine (the upstream distro 2.4x instead of 2.7x).
Medians, their ratios to bare, and the median (and range) of each round's ratio
to that round's bare server are printed.
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


def run_variants(names: list[str], requests: int, endpoint: str, warmup: int, block: int) -> dict[str, float]:
    """One round: each variant's CPU µs per request, all served in lockstep."""
    servers = {}
    for name in names:
        prefix, env = variant_env(name, endpoint)
        servers[name] = ([*prefix, str(BIN / "uvicorn")], env)
    return {name: figures[0] for name, figures in load_servers(servers, requests, warmup, block).items()}


def start_server(name: str, launcher: list[str], env: dict[str, str],
                 app: str = "examples.fastapi_app.main:app") -> tuple[subprocess.Popen, int]:
    """``app`` (the example shop unless named) served by ``launcher`` (the uvicorn command, maybe behind a
    wrapper) on a free port, once it accepts connections."""
    port = free_port()
    argv = [*launcher, app, "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", "--no-access-log"]
    with open(os.devnull, "wb") as devnull:
        server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=devnull, stderr=devnull,
                                  start_new_session=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, port
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                stop_server(server)
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        server.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(5)


def send_in_turn(connections: list[http.client.HTTPConnection], times: int, block: int) -> None:
    """``times`` requests to each connection, ``block`` to one before the next one's turn."""
    sent = 0
    while sent < times:
        size = min(block, times - sent)
        for connection in connections:
            for _ in range(size):
                connection.request("GET", "/items/1")
                connection.getresponse().read()
        sent += size


def load_servers(servers: dict[str, tuple[list[str], dict[str, str]]], requests: int,
                 warmup: int, block: int = 1) -> dict[str, tuple[float, float]]:
    """Serve the example shop once per entry (name: launcher, environment) and load them in lockstep; per
    name, the CPU µs per measured request of all its threads and of its main (event-loop) thread."""
    started: dict[str, subprocess.Popen] = {}
    connections: dict[str, http.client.HTTPConnection] = {}
    try:
        for name, (launcher, env) in servers.items():
            server, port = start_server(name, launcher, env)
            started[name] = server
            connections[name] = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        # Warm-up past start-up's debts: the first full garbage collection after the
        # imports comes within the first ~10,000 requests once anything collects
        # (~75 ms, once), and would be charged to the measured requests otherwise.
        send_in_turn(list(connections.values()), warmup, block)
        before = {name: thread_cpu(server.pid) for name, server in started.items()}
        send_in_turn(list(connections.values()), requests, block)
        after = {name: thread_cpu(server.pid) for name, server in started.items()}
    finally:
        for connection in connections.values():
            connection.close()
        for server in started.values():
            stop_server(server)
    figures = {}
    for name, server in started.items():
        total = sum(after[name].values()) - sum(before[name].values())
        # the main thread's id is the pid
        main = after[name].get(server.pid, 0.0) - before[name].get(server.pid, 0.0)
        figures[name] = (total / requests * 1e6, main / requests * 1e6)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20000, help="requests before measuring")
    parser.add_argument("--block", type=int, default=200, help="requests to one server before the next one's turn")
    args = parser.parse_args()
    variants = ["bare", "upstream-distro", "otel-distro", "otel-distro-1pct"]
    results: dict[str, list[float]] = {v: [] for v in variants}
    with OtlpTestReceiver() as receiver:
        for _ in range(args.rounds):
            for name, figure in run_variants(variants, args.requests, receiver.endpoint, args.warmup,
                                                     args.block).items():
                results[name].append(figure)
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
