"""The seams that run in a forked child: a failure there keeps the child's telemetry flowing and is reported once."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_distro import _internal_errors, forksafe
from otel_distro._sdk_private import exporter_connections, metric_locks_after_fork, provider_resource
from tests.conftest import fresh_guards


def in_forked_child(work: Callable[[], Any]) -> Any:
    """``work()``'s JSON result, computed in a forked child (which always exits, within 30 s)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(30)  # a child that hangs ends, and the test fails on its empty answer
            os.write(write, json.dumps(work()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    assert answer, "the child wrote nothing"
    return json.loads(answer)


def _renamed(*args: object) -> None:
    raise AttributeError("'MetricReaderStorage' object has no attribute '_instrument_view_instrument_matches'")


def _points(reader: InMemoryMetricReader) -> int:
    data = reader.get_metrics_data()
    return sum(p.value for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
               for p in m.data.data_points)


def test_renewed_metric_locks_let_a_child_collect_what_a_held_lock_would_block(monkeypatch) -> None:
    guard = fresh_guards(monkeypatch, metric_locks_after_fork, "RENEW")[0]
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metric_locks_after_fork.renew_after_fork(provider)
    provider.get_meter("t").create_counter("c").add(2)
    lock = provider._measurement_consumer._lock  # as if the parent's reader thread were collecting
    with lock:
        child = in_forked_child(lambda: _points(reader))
    provider.shutdown()
    assert child == 2 and guard.active


def test_a_failing_lock_renewal_is_reported_once_and_the_child_still_collects(production_errors, monkeypatch) -> None:
    monkeypatch.setattr(metric_locks_after_fork, "_renew", _renamed)
    fresh_guards(monkeypatch, metric_locks_after_fork, "RENEW")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    metric_locks_after_fork.renew_after_fork(provider)
    provider.get_meter("t").create_counter("c").add(3)
    child = in_forked_child(lambda: [_points(reader), _internal_errors.internal_error_counts()])
    provider.shutdown()
    assert child == [3, {"sdk_private.metric_locks_after_fork": 1}]


def test_a_failing_connection_close_is_reported_once_and_the_childs_export_arrives(
        production_errors, monkeypatch, receiver) -> None:
    monkeypatch.setattr(exporter_connections, "_close", _renamed)
    fresh_guards(monkeypatch, exporter_connections, "CLOSE")
    exporter = forksafe.track(OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces"))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.get_tracer("t").start_span("in the parent").end()  # a pooled connection to inherit

    def child_exports() -> dict:
        provider.get_tracer("t").start_span("in the child").end()
        return _internal_errors.internal_error_counts()

    counts = in_forked_child(child_exports)
    receiver.wait_for(lambda: {"in the parent", "in the child"} <= {s.name for s in receiver.spans()},
                      what="both spans")
    provider.shutdown()
    assert counts == {"sdk_private.exporter_connections": 1}


def test_a_failing_resource_refresh_is_reported_once_and_the_childs_spans_still_end(
        production_errors, monkeypatch) -> None:
    monkeypatch.setattr(provider_resource, "_update", _renamed)
    fresh_guards(monkeypatch, provider_resource, "UPDATE")
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    provider_resource.refresh_process_after_fork([provider])

    def child_span() -> list:
        provider.get_tracer("t").start_span("child").end()
        return [[s.name for s in spans.get_finished_spans()], _internal_errors.internal_error_counts()]

    assert in_forked_child(child_span) == [["child"], {"sdk_private.provider_resource": 1}]
    provider.shutdown()


def test_the_child_is_told_its_own_pid(monkeypatch) -> None:
    fresh_guards(monkeypatch, provider_resource, "UPDATE")
    provider = TracerProvider()
    provider_resource.refresh_process_after_fork([provider])
    parent = os.getpid()
    child = in_forked_child(lambda: [os.getpid(), provider.resource.attributes.get("process.pid"),
                                     provider.resource.attributes.get("process.parent_pid")])
    provider.shutdown()
    assert child[1] == child[0] != parent and child[2] == parent

