"""A real Collector for tests: the otelcol `otel-distro stack build` caches, on a given config.

``collector_binary()`` finds it (None when none was built); ``running_collector(...)`` starts it with
internal telemetry off (nothing binds the default :8888) and always stops it.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml


def collector_binary() -> Path | None:
    """The Collector `otel-distro stack build` made for the pinned manifest, or None if it is not built."""
    from otel_distro.stack_build import DEFAULT_CACHE, CollectorManifest

    binary = CollectorManifest.load().binary(DEFAULT_CACHE)
    return binary if binary.exists() else None


def _accepts_otlp(endpoint: str) -> bool:
    request = urllib.request.Request(endpoint + "/v1/traces", data=b"", method="POST",
                                     headers={"Content-Type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(request, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


@contextmanager
def running_collector(binary: Path, config: dict[str, Any], work: Path, otlp_endpoint: str,
            timeout: float = 60.0) -> Iterator[subprocess.Popen]:
    """The Collector on ``config`` until the block ends; ready once ``otlp_endpoint`` accepts OTLP/HTTP."""
    config.setdefault("service", {}).setdefault("telemetry", {})["metrics"] = {"level": "none"}
    (work / "otelcol.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    log_path = work / "otelcol.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(binary), "--config", str(work / "otelcol.yaml")], stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not _accepts_otlp(otlp_endpoint):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the Collector did not start:\n{log_path.read_text(errors='replace')}")
                time.sleep(0.2)
            yield process
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
