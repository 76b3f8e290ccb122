"""Where the server CPU per request goes: the distro with one part switched off at a time, per thread.

    python bench/server_cpu_breakdown.py [--requests 4000] [--rounds 4] [--warmup 5000] [--block 200]
                                         [--variants bare,full,span,log-bridge,...]

The load of ``bench/http_server_cpu.py`` (the example shop under uvicorn, one keep-alive connection, OTLP/HTTP to
the test receiver, all signals, 100% sampling), with parts switched off by ``bench/server_ablations.py``
(``span``, ``span-processors``, ``histogram-points``, ``active-requests``, ``log-bridge``, ``middleware``;
``a+b`` switches both off), and exporters switched off by their variables (``no-trace-export``,
``no-log-export``). Each round serves every variant in turn, ``--block`` requests at a time (see
``http_server_cpu.py``: the machine's drift cancels out of the differences). Per variant: the CPU µs per
request of the main (event-loop) thread and of the other threads (exporters, log bridge), and what switching the
part off saved against ``full`` - its cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import http_server_cpu as load  # the benchmark next to this one

EXPORTERS_OFF = {"no-trace-export": {"OTEL_TRACES_EXPORTER": "none"},
                 "no-log-export": {"OTEL_LOGS_EXPORTER": "none"}}
DEFAULT_VARIANTS = "bare,full,span,span-processors,histogram-points,log-bridge,no-trace-export,middleware"


def launcher_and_env(variant: str, endpoint: str) -> tuple[list[str], dict[str, str]]:
    if variant == "bare":
        prefix, env = load.variant_env("bare", endpoint)
        return [*prefix, str(load.BIN / "uvicorn")], env
    prefix, env = load.variant_env("otel-distro", endpoint)
    if variant in EXPORTERS_OFF:
        env.update(EXPORTERS_OFF[variant])
    elif variant != "full":
        env["BENCH_SWITCH_OFF"] = variant.replace("+", ",")
    return [*prefix, str(load.BIN / "python"), str(Path(__file__).resolve().parent / "server_ablations.py")], env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=5000)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS)
    parser.add_argument("--block", type=int, default=200, help="requests to one server before the next one's turn")
    args = parser.parse_args()
    variants = args.variants.split(",")
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    with load.OtlpTestReceiver() as receiver:
        for _ in range(args.rounds):
            servers = {variant: launcher_and_env(variant, receiver.endpoint) for variant in variants}
            for variant, figures in load.load_servers(servers, args.requests, args.warmup,
                                                             args.block).items():
                results[variant].append(figures)
    medians = {v: (statistics.median(t for t, _ in r), statistics.median(m for _, m in r),
                   statistics.median(t - m for t, m in r)) for v, r in results.items()}
    full = medians.get("full")
    print(f"{'variant (switched off)':<34} {'all µs':>7} {'main':>7} {'others':>7} {'saves main':>11} {'others':>7}")
    for variant, (total, main_thread, others) in medians.items():
        saved = (f"{full[1] - main_thread:>11.1f} {full[2] - others:>7.1f}"
                 if full and variant not in ("full", "bare") else "")
        print(f"{variant:<34} {total:>7.1f} {main_thread:>7.1f} {others:>7.1f} {saved}")


if __name__ == "__main__":
    main()
