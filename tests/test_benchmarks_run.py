"""The benchmarks in bench/ still run against the code they measure (tiny sizes: nothing here is timed).

A benchmark that no longer starts is a figure nobody can reproduce: bench_encode broke once when the
exporter classes it drives were renamed, and nobody noticed until it was needed.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_bench(*argv: str, timeout: float = 240) -> str:
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_encoder_benchmark_runs_and_checks_its_bytes_against_the_sdk():
    out = run_bench("bench/bench_encode.py", "--rounds", "1", "--repeat", "1")
    # the benchmark asserts byte equality with the SDK's encoder before timing anything
    assert "spans, redacted" in out and "logs, plain" in out


def test_the_server_cpu_breakdown_runs_each_part_switched_off():
    out = run_bench("bench/server_cpu_breakdown.py", "--requests", "30", "--warmup", "30", "--rounds", "1",
                    "--variants", "bare,full,span+log-bridge,histogram-points,no-trace-export")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:] if line.strip()}
    assert set(rows) == {"bare", "full", "span+log-bridge", "histogram-points", "no-trace-export"}
    for name, figures in rows.items():
        assert float(figures[0]) > 0, (name, figures)  # every server took CPU for its requests
    assert len(rows["full"]) == 3 and len(rows["span+log-bridge"]) == 5  # savings are given against full
