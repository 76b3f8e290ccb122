"""``otel-distro verify URL``: a deployment gate for any CI system.

It checks that the service is ready, that its metrics are there, and that a
bounded burst of requests meets the latency and error thresholds. Exit
status: 0 pass, 1 a check failed, 2 bad usage or the target is unreachable.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

PASS, FAIL, UNREACHABLE = 0, 1, 2


@dataclass(frozen=True)
class Check:
    name: str
    measured: str
    threshold: str
    passed: bool


@dataclass
class Outcome:
    checks: list[Check] = field(default_factory=list)
    unreachable: str | None = None

    @property
    def status(self) -> int:
        if self.unreachable:
            return UNREACHABLE
        return PASS if all(c.passed for c in self.checks) else FAIL

    def as_dict(self) -> dict:
        return {"status": {PASS: "pass", FAIL: "fail", UNREACHABLE: "unreachable"}[self.status],
                "unreachable": self.unreachable, "checks": [asdict(c) for c in self.checks]}


@dataclass(frozen=True)
class Thresholds:
    p95_ms: float = 1000.0
    max_error_ratio: float = 0.01


def _fetch(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a real measured value)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def check_ready(base: str, path: str, timeout: float) -> Check:
    status, _ = _fetch(base + path, timeout)
    return Check(f"ready ({path})", str(status), "200", status == 200)


def check_series(metrics_url: str, series: Sequence[str], timeout: float) -> list[Check]:
    """Each expected series is present on a metrics endpoint (Prometheus text format)."""
    from prometheus_client.parser import text_string_to_metric_families

    status, body = _fetch(metrics_url, timeout)
    if status != 200:
        return [Check("metrics endpoint", str(status), "200", False)]
    names = {sample.name for family in text_string_to_metric_families(body.decode())
             for sample in family.samples}
    return [Check(f"series {name}", "present" if any(n.startswith(name) for n in names) else "absent",
                  "present", any(n.startswith(name) for n in names)) for name in series]


def check_series_in_prometheus(prometheus_url: str, series: Sequence[str],
                               timeout: float) -> list[Check]:
    """Each expected series has data in a Prometheus server (instant query)."""
    checks = []
    for name in series:
        query = urllib.parse.urlencode({"query": f"count({{__name__=~\"{name}.*\"}})"})
        status, body = _fetch(f"{prometheus_url.rstrip('/')}/api/v1/query?{query}", timeout)
        found = status == 200 and bool(json.loads(body).get("data", {}).get("result"))
        checks.append(Check(f"series {name}", "present" if found else "absent", "present", found))
    return checks


def measure(base: str, paths: Sequence[str], requests: int, seconds: float, timeout: float,
            progress: Callable[[int, int], None]) -> tuple[list[float], int]:
    """Send up to ``requests`` requests round-robin over ``paths``; latencies (ms) and errors."""
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds
    while len(latencies) < requests and time.monotonic() < deadline:
        path = paths[len(latencies) % len(paths)]
        started = time.perf_counter()
        try:
            status, _ = _fetch(base + path, timeout)
        except OSError:
            status = 0
        latencies.append((time.perf_counter() - started) * 1000)
        errors += status == 0 or status >= 500
        progress(len(latencies), requests)
    return latencies, errors


def run(base: str, *, paths: Sequence[str], requests: int, seconds: float,
        thresholds: Thresholds, ready_path: str, metrics_url: str | None,
        prometheus_url: str | None, series: Sequence[str], timeout: float,
        progress: Callable[[int, int], None]) -> Outcome:
    outcome = Outcome()
    base = base.rstrip("/")
    try:
        outcome.checks.append(check_ready(base, ready_path, timeout))
    except OSError as err:
        outcome.unreachable = f"{base}{ready_path}: {getattr(err, 'reason', err)}"
        return outcome
    latencies, errors = measure(base, paths, requests, seconds, timeout, progress)
    sent = len(latencies)
    p95 = percentile(latencies, 0.95)
    ratio = errors / sent if sent else 1.0
    outcome.checks.append(Check("requests sent", str(sent), f"{requests}", sent > 0))
    outcome.checks.append(Check("p95 latency", f"{p95:.1f} ms", f"<= {thresholds.p95_ms:g} ms",
                                sent > 0 and p95 <= thresholds.p95_ms))
    outcome.checks.append(Check("error ratio", f"{ratio:.2%} ({errors}/{sent})",
                                f"<= {thresholds.max_error_ratio:.2%}",
                                sent > 0 and ratio <= thresholds.max_error_ratio))
    # After the load, so the series reflect this very traffic.
    if metrics_url:
        try:
            outcome.checks.extend(check_series(metrics_url, series, timeout))
        except OSError as err:
            outcome.checks.append(Check("metrics endpoint", f"unreachable ({err})", "200", False))
    if prometheus_url:
        try:
            outcome.checks.extend(check_series_in_prometheus(prometheus_url, series, timeout))
        except OSError as err:
            outcome.checks.append(Check("prometheus", f"unreachable ({err})", "200", False))
    return outcome


def render(outcome: Outcome) -> str:
    if outcome.unreachable:
        return f"UNREACHABLE: {outcome.unreachable}"
    rows = [("check", "measured", "threshold", "verdict")]
    rows += [(c.name, c.measured, c.threshold, "pass" if c.passed else "FAIL") for c in outcome.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    lines.append("PASS" if outcome.status == PASS else "FAIL")
    return "\n".join(lines)
