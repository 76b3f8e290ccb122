"""Process and CPython collector metrics: semantic-convention names, units and attributes, real readings."""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_distro import process_metrics

EXPECTED = {  # name: (unit, attribute key, its values)
    "process.cpu.time": ("s", "cpu.mode", {"user", "system"}),
    "process.cpu.utilization": ("1", "cpu.mode", {"user", "system"}),
    "process.memory.usage": ("By", None, None),
    "process.memory.virtual": ("By", None, None),
    "process.open_file_descriptor.count": ("{file_descriptor}", None, None),
    "process.thread.count": ("{thread}", None, None),
    "process.context_switches": ("{context_switch}", "process.context_switch.type", {"voluntary", "involuntary"}),
    "cpython.gc.collections": ("{collection}", "cpython.gc.generation", {0, 1, 2}),
    "cpython.gc.collected_objects": ("{object}", "cpython.gc.generation", {0, 1, 2}),
    "cpython.gc.uncollectable_objects": ("{object}", "cpython.gc.generation", {0, 1, 2}),
}


PARKED_THREADS = 24  # the parent waits on these; a forked child has none of them


class Observed:
    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.metrics = process_metrics.start(self.provider)

    def collect(self) -> dict[str, tuple[str, dict]]:
        """name -> (unit, {attribute value or None: value})"""
        found = {}
        for rm in self.reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    points = {}
                    for point in metric.data.data_points:
                        attributes = dict(point.attributes)
                        assert len(attributes) <= 1, attributes
                        points[next(iter(attributes.values()), None)] = point.value
                    found[metric.name] = (metric.unit, points, {k for p in metric.data.data_points
                                                               for k in p.attributes})
        return found


@pytest.fixture()
def observed() -> Iterator[Observed]:
    made = Observed()
    yield made
    made.provider.shutdown()


def test_every_instrument_has_its_semantic_convention_unit_and_attributes(observed: Observed) -> None:
    found = observed.collect()
    assert set(found) == set(EXPECTED)
    for name, (unit, key, values) in EXPECTED.items():
        got_unit, points, keys = found[name]
        assert got_unit == unit, name
        assert keys == ({key} if key else set()), name
        assert set(points) == (values if values else {None}), name


def test_readings_follow_the_process(observed: Observed) -> None:
    me = psutil.Process()
    stop = threading.Event()
    before = observed.collect()
    threads = [threading.Thread(target=stop.wait, args=(30,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        gc.collect(1)
        gc.collect(1)
        after = observed.collect()
        threads_now = me.num_threads()  # other tests' threads may come and go meanwhile
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert after["process.thread.count"][1][None] >= 4
    assert after["process.thread.count"][1][None] == pytest.approx(threads_now, abs=2)
    assert after["cpython.gc.collections"][1][1] >= before["cpython.gc.collections"][1][1] + 2
    assert after["process.cpu.time"][1]["user"] >= before["process.cpu.time"][1]["user"] > 0
    rss = me.memory_info().rss
    assert rss / 2 < after["process.memory.usage"][1][None] < rss * 2
    assert after["process.memory.virtual"][1][None] >= after["process.memory.usage"][1][None]
    assert after["process.open_file_descriptor.count"][1][None] == pytest.approx(me.num_fds(), abs=8)
    switches = after["process.context_switches"][1]
    assert switches["voluntary"] + switches["involuntary"] > 0


def test_utilization_is_the_cpu_share_since_the_last_collection(observed: Observed) -> None:
    me = psutil.Process()
    observed.collect()
    start = me.cpu_times().user
    for _ in range(200):  # bounded: at most 200 rounds of work
        sum(range(200_000))
        if me.cpu_times().user - start > 0.1:
            break
    user = observed.collect()["process.cpu.utilization"][1]["user"]
    assert 0 < user <= 1.0


def test_a_forked_child_reports_its_own_process(observed: Observed) -> None:
    # The child is not assumed to have one thread: at-fork hooks of providers other tests left
    # alive start threads in it (the SDK's resource detection pool). What holds is that the
    # reading is the child's own count, between the child's counts just before and just after it
    # (nothing in the child starts a thread after fork), which is below the parent's.
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait, args=(30,)) for _ in range(PARKED_THREADS)]
    for thread in threads:
        thread.start()
    try:
        parent_threads = observed.collect()["process.thread.count"][1][None]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                child = psutil.Process()
                before = child.num_threads()
                reading = observed.collect()["process.thread.count"][1][None]
                after = child.num_threads()
                os.write(write, json.dumps([before, reading, after]).encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            before, reading, after = json.loads(pipe.read() or "[null, null, null]")
        os.waitpid(pid, 0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert parent_threads > PARKED_THREADS
    assert parent_threads > before >= reading >= after >= 1, (parent_threads, before, reading, after)


def test_a_reading_that_fails_is_reported_once_and_the_rest_observed(
        observed: Observed, caplog: pytest.LogCaptureFixture, production_errors: None) -> None:
    def denied() -> int:
        raise psutil.AccessDenied(os.getpid())

    observed.metrics._process.num_fds = denied  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        first = observed.collect()
        second = observed.collect()
    assert "process.open_file_descriptor.count" not in first and "process.open_file_descriptor.count" not in second
    assert "process.memory.usage" in second
    warnings = [r.getMessage() for r in caplog.records if "open_file_descriptor" in r.getMessage()]
    assert len(warnings) == 1, warnings


def test_configure_does_not_load_the_instrumentor_framework() -> None:
    # Start-up cost: the instrumentor framework (packaging, wrapt ...) is ~20 ms,
    # and configure() with logs and process metrics on has no need of it.
    code = ("import sys, otel_distro; otel_distro.configure(); "
            "print(sorted(m for m in ('opentelemetry.instrumentation.instrumentor', 'packaging', 'wrapt') "
            "if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_SERVICE_NAME="startup", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="console",
               OTEL_LOGS_EXPORTER="console", OTEL_METRIC_EXPORT_INTERVAL="600000")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[0] == "[]", out.stdout
