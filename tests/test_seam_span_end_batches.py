"""The middleware's SERVER spans reach the processors' on_end in batches: never lost, never much later, and
never in batches where a processor could tell."""

from __future__ import annotations

import logging
import os
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_distro._sdk_private import span_end_batches as seam
from otel_distro.integrations.server_span import ServerSpans
from tests.conftest import fresh_guards


class _Provider:
    """A provider set up as the distro's (batches first, then a batch processor) with an in-memory exporter."""

    def __init__(self, schedule_delay_millis: int = 60_000) -> None:
        self.provider = TracerProvider()
        self.batches = seam.install(self.provider)
        assert self.batches is not None  # this SDK is the one span_end_batches.py was written for
        self.exported = InMemorySpanExporter()
        self.provider.add_span_processor(BatchSpanProcessor(self.exported, schedule_delay_millis=schedule_delay_millis))
        self.spans = ServerSpans(self.provider.get_tracer("t"))

    def serve(self, *paths: str) -> None:
        for path in paths:
            self.spans.start("GET", None, {"url.path": path}).end()

    def exported_paths(self) -> list[str]:
        return [span.attributes["url.path"] for span in self.exported.get_finished_spans()]


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> seam.FastPath:
    (batching,) = fresh_guards(monkeypatch, seam, "BATCHING")
    return batching


def test_ended_spans_wait_and_force_flush_hands_them_all_on_in_order(guard) -> None:
    rig = _Provider()
    rig.serve("/a", "/b", "/c")
    assert [span.attributes["url.path"] for span in rig.batches._waiting] == ["/a", "/b", "/c"]
    assert rig.provider.force_flush()
    assert rig.exported_paths() == ["/a", "/b", "/c"]
    rig.provider.shutdown()


def test_a_span_reaches_the_exporter_within_the_flush_interval_without_a_flush(guard) -> None:
    rig = _Provider(schedule_delay_millis=20)
    rig.serve("/only")
    deadline = time.monotonic() + seam.FLUSH_SECONDS + 3.0
    while not rig.exported_paths() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rig.exported_paths() == ["/only"]
    rig.provider.shutdown()


def test_a_full_batch_is_handed_on_by_the_thread_that_ends_it(guard, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seam, "FLUSH_SECONDS", 60.0)  # the flushing thread stays out of it
    rig = _Provider()
    rig.serve(*(f"/{i}" for i in range(seam.BATCH - 1)))
    assert len(rig.batches._waiting) == seam.BATCH - 1
    rig.serve("/last")
    assert not rig.batches._waiting
    rig.provider.force_flush()
    assert len(rig.exported_paths()) == seam.BATCH
    rig.provider.shutdown()


def test_shutdown_hands_the_waiting_spans_on_before_the_exporters_stop(guard) -> None:
    rig = _Provider()
    rig.serve("/a", "/b")
    rig.provider.shutdown()
    assert rig.exported_paths() == ["/a", "/b"]


def test_a_processor_added_later_gets_the_waiting_spans_first_and_then_every_span_at_once(guard) -> None:
    rig = _Provider()
    rig.serve("/a", "/b")
    late = InMemorySpanExporter()
    rig.provider.add_span_processor(SimpleSpanProcessor(late))  # its on_end cannot come late
    rig.serve("/c")
    assert [span.attributes["url.path"] for span in late.get_finished_spans()] == ["/a", "/b", "/c"]
    assert not rig.batches._waiting
    rig.provider.shutdown()


def test_a_provider_with_a_processor_of_unknown_manners_is_not_batched(guard) -> None:
    provider = TracerProvider()
    batches = seam.install(provider)
    seen = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(seen))
    ServerSpans(provider.get_tracer("t")).start("GET", None, {"url.path": "/now"}).end()
    assert [span.attributes["url.path"] for span in seen.get_finished_spans()] == ["/now"]
    assert batches is not None and not batches._waiting


def test_a_forked_child_drops_its_parents_waiting_spans(guard) -> None:
    rig = _Provider()
    rig.serve("/parent")
    pid = os.fork()
    if pid == 0:  # the child: the parent hands /parent on, the child must not export it again
        code = 0 if not rig.batches._waiting else 1
        rig.serve("/child")
        rig.provider.force_flush()
        code |= 0 if rig.exported_paths() == ["/child"] else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    rig.provider.force_flush()
    assert rig.exported_paths() == ["/parent"]
    rig.provider.shutdown()


def test_a_failing_batch_check_hands_each_span_on_at_once_and_is_reported_once(
        guard, production_errors, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    rig = _Provider()

    def changed_private_parts(self: seam.EndBatches, current: tuple) -> None:
        raise AttributeError("'tuple' object has no attribute '_span_processors'")

    monkeypatch.setattr(seam.EndBatches, "check", changed_private_parts)
    rig.serve("/a", "/b")
    assert not rig.batches._waiting and not guard.active
    rig.provider.force_flush()
    assert rig.exported_paths() == ["/a", "/b"]
    warnings = [r.getMessage() for r in caplog.records if "span_end_batches" in r.getMessage()]
    assert len(warnings) == 1 and "AttributeError" in warnings[0], warnings
    rig.provider.shutdown()
