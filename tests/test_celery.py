"""Celery under ``opentelemetry-instrument``: one trace per task, task metrics, the prefork pool.

The broker is kombu's filesystem transport in folders under tmp_path: no
server. The worker runs the prefork pool with ``--max-tasks-per-child=1``, so
every task runs in a fresh child that ends with ``os._exit`` (no atexit).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from otel_distro.integrations import celery as celery_integration
from otel_distro.metrics import SECONDS_BUCKETS
from tests.conftest import BIN, telemetry_env

TASKS = "examples.celery_worker.tasks"
PRICE = f"{TASKS}.price_order"
CHARGE = f"{TASKS}.charge_card"
RESERVE = f"{TASKS}.reserve_stock"

SPAN_KIND_PRODUCER = 4
SPAN_KIND_CONSUMER = 5
STATUS_ERROR = 2


def _process_group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.integration
def test_prefork_worker_traces_metrics_and_logs(receiver, start_service, tmp_path: Path) -> None:
    broker = {"CELERY_FS_BROKER_DIR": str(tmp_path / "broker"), "EXAMPLE_RETRY_DELAY": "0.2"}
    worker = start_service(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "celery"), "-A", TASKS, "worker",
         "--pool=prefork", "--concurrency=2", "--max-tasks-per-child=1", "--loglevel=INFO",
         "--without-mingle", "--without-gossip", "--without-heartbeat", "-O", "fair"],
        telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="orders-worker", **broker),
        name="worker")
    producer = start_service(
        [str(BIN / "opentelemetry-instrument"), sys.executable, "-m", "examples.celery_worker.send"],
        telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="orders-api", **broker),
        name="producer")
    assert producer.wait(30) == 0, producer.output()
    sent = dict(line.split() for line in producer.output().splitlines()
                if line.startswith(TASKS + "."))
    assert set(sent) == {PRICE, CHARGE, RESERVE}, producer.output()

    def worker_spans():
        return [s for s in receiver.spans() if s.resource.get("service.name") == "orders-worker"]

    def runs_seen():
        return {(p.attributes.get("celery.task.name"), p.attributes.get("celery.task.outcome"))
                for m in receiver.metric("celery.task.runs") for p in m.points if p.value}

    expected_runs = {(PRICE, "success"), (CHARGE, "failure"), (RESERVE, "retry"),
                     (RESERVE, "success")}
    try:
        receiver.wait_for(lambda: len([s for s in worker_spans()
                                       if s.name.startswith("run/")]) >= 4,
                          timeout=40, what="4 run spans from the worker (1 retried)")
        receiver.wait_for(lambda: expected_runs <= runs_seen(), timeout=15,
                          what=f"celery.task.runs with {sorted(expected_runs)}")
    except AssertionError as err:
        raise AssertionError(f"{err}\nworker:\n{worker.output()}") from None

    # One trace per task: the producer's apply_async span and the worker's run span(s).
    spans = receiver.spans()
    by_trace = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    for task_name in sent:
        publish = [s for s in spans if s.name == f"apply_async/{task_name}"
                   and s.resource.get("service.name") == "orders-api"]
        assert len(publish) == 1, [s.name for s in spans]
        assert publish[0].kind == SPAN_KIND_PRODUCER
        trace = by_trace[publish[0].trace_id]
        runs = [s for s in trace if s.name == f"run/{task_name}"]
        assert runs, f"no run span for {task_name} in the producer's trace"
        for run in runs:
            assert run.kind == SPAN_KIND_CONSUMER
            assert run.resource["service.name"] == "orders-worker"
            assert run.parent_span_id in {s.span_id for s in trace}
        assert [s for s in spans if s.name == f"run/{task_name}"
                and s.trace_id != publish[0].trace_id] == []
    charge_run = next(s for s in spans if s.name == f"run/{CHARGE}")
    assert charge_run.status_code == STATUS_ERROR
    assert "declined" in charge_run.status_message
    retried = [s for s in by_trace[next(s.trace_id for s in spans
                                        if s.name == f"apply_async/{RESERVE}")]
               if s.name == f"run/{RESERVE}"]
    assert len(retried) == 2

    # Task metrics, from the pool children.
    runs_metrics = receiver.metric("celery.task.runs")
    assert {m.unit for m in runs_metrics} == {"{run}"}
    assert {m.kind for m in runs_metrics} == {"sum"}
    durations = receiver.metric("celery.task.duration")
    assert durations, "no celery.task.duration"
    seen_duration = set()
    for metric in durations:
        assert metric.unit == "s"
        assert metric.kind == "histogram"
        for point in metric.points:
            assert point.bounds == list(SECONDS_BUCKETS)
            assert point.count >= 1 and point.sum >= 0
            seen_duration.add((point.attributes["celery.task.name"],
                               point.attributes["celery.task.outcome"]))
    assert seen_duration == expected_runs

    # Every pool child reports as itself: its own pid and service.instance.id.
    children: dict[int, set[str]] = defaultdict(set)
    for span in worker_spans():
        if span.name.startswith("run/"):
            children[span.resource["process.pid"]].add(span.resource["service.instance.id"])
    for metric in runs_metrics:
        children[metric.resource["process.pid"]].add(metric.resource["service.instance.id"])
    assert worker.process.pid not in children
    assert len(children) >= 2, children
    assert all(len(ids) == 1 for ids in children.values()), children
    instance_ids = [next(iter(ids)) for ids in children.values()]
    assert len(set(instance_ids)) == len(instance_ids), children
    parent_ids = {m.resource["service.instance.id"] for m in receiver.metrics()
                  if m.resource.get("process.pid") == worker.process.pid}
    assert not parent_ids & set(instance_ids)

    # Logs written inside tasks (Celery's task logger) carry their run span's trace.
    run_traces = {s.trace_id for s in worker_spans() if s.name.startswith("run/")}
    receiver.wait_for(lambda: {lg.trace_id for lg in receiver.logs()
                               if "warehouse busy" in str(lg.body)} & run_traces,
                      timeout=10, what="the retry warning log with its task's trace id")
    declined = [lg for lg in receiver.logs() if "charging card ending" in str(lg.body)]
    assert declined and declined[0].trace_id == charge_run.trace_id

    # SIGTERM to the worker: it and all its pool children are gone within a bound.
    os.kill(worker.process.pid, signal.SIGTERM)
    worker.wait(20)
    deadline = time.monotonic() + 10
    while not _process_group_gone(worker.process.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _process_group_gone(worker.process.pid), "pool children left behind"


def test_instrument_is_idempotent_and_records_outcomes(caplog: pytest.LogCaptureFixture, production_errors) -> None:
    """In process, eager tasks: one set of handlers however often it is called; handlers never raise."""
    from celery import Celery, signals
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from otel_distro.metrics import views

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], views=views())
    app = Celery("eager", broker="memory://", set_as_current=False)
    app.conf.task_always_eager = True

    @app.task(name="ok")
    def ok() -> int:
        return 1

    @app.task(name="boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.task(name="again", bind=True, max_retries=1)
    def again(self) -> int:
        if self.request.retries == 0:
            raise self.retry(countdown=0)
        return 2

    receivers_before = len(signals.task_postrun.receivers)
    celery_integration.uninstrument()
    try:
        celery_integration.instrument(meter_provider=provider)
        celery_integration.instrument(meter_provider=provider)
        assert len(signals.task_postrun.receivers) == receivers_before + 1
        ok.apply()
        boom.apply()
        again.apply()
        # Odd arguments are ignored; a failing handler is logged once by us, never raised.
        signals.task_postrun.send(sender=None, task_id="never-started", task=object(), state=3)
        signals.task_prerun.send(sender=None, task_id=None)

        class Broken:
            name = "broken"

            @property
            def request(self) -> None:
                raise RuntimeError("no request here")

        caplog.clear()
        with caplog.at_level(logging.WARNING):
            for _ in range(3):
                signals.task_prerun.send(sender=Broken(), task_id="x", task=Broken())
        ours = [r for r in caplog.records if "Celery task_prerun handler failed" in r.getMessage()]
        assert len(ours) == 1
        assert not [r for r in caplog.records if r.name.startswith("celery")]

        data = reader.get_metrics_data()
        points = {}
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    for point in metric.data.data_points:
                        key = (metric.name, point.attributes["celery.task.name"],
                               point.attributes["celery.task.outcome"])
                        points[key] = point
        assert points[("celery.task.runs", "ok", "success")].value == 1
        assert points[("celery.task.runs", "boom", "failure")].value == 1
        assert points[("celery.task.runs", "again", "retry")].value == 1
        assert points[("celery.task.runs", "again", "success")].value == 1
        histogram = points[("celery.task.duration", "ok", "success")]
        assert list(histogram.explicit_bounds) == list(SECONDS_BUCKETS)
        assert histogram.count == 1
    finally:
        celery_integration.uninstrument()
        provider.shutdown()
    assert len(signals.task_postrun.receivers) == receivers_before


def test_outcome_mapping_and_bounded_flush(caplog: pytest.LogCaptureFixture) -> None:
    assert celery_integration.outcome("SUCCESS") == "success"
    assert celery_integration.outcome("RETRY") == "retry"
    assert celery_integration.outcome("FAILURE") == "failure"
    assert celery_integration.outcome("REJECTED") == "failure"
    assert celery_integration.outcome("IGNORED") == "success"
    assert celery_integration.outcome(None) == "failure"

    # A provider whose flush never returns (an unreachable Collector) cannot hold the child.
    from opentelemetry import trace

    class Stuck:
        def force_flush(self, timeout_millis: float = 0) -> bool:
            time.sleep(30)
            return True

    original = trace.get_tracer_provider
    trace.get_tracer_provider = lambda: Stuck()  # type: ignore[assignment]
    try:
        with caplog.at_level(logging.WARNING, logger="otel_distro"):
            assert celery_integration.flush(timeout_s=0.3) is False
    finally:
        trace.get_tracer_provider = original  # type: ignore[assignment]
    assert "not fully flushed" in caplog.text
