"""Seam _sdk_private.log_queue: when putting straight into the batch queues fails mid-export, records still arrive."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

from otel_distro import _internal_errors, logs, resource
from otel_distro._sdk_private import log_queue
from otel_distro.settings import load
from tests.otlp_test_receiver import OtlpTestReceiver


def test_a_failing_direct_put_falls_back_to_the_sdk_and_the_records_arrive(
        receiver: OtlpTestReceiver, production_errors: None, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = load({"OTEL_SERVICE_NAME": "seam"})
    provider = logs.build(chosen, resource.build(chosen),
                          log_exporters=[OTLPLogExporter(endpoint=f"{receiver.endpoint}/v1/logs")])
    logs.remove_bridge()
    bridge = logs.install_bridge(provider, logging.INFO)
    logging.getLogger().setLevel(logging.INFO)
    log = logging.getLogger("seam")
    try:
        log.info("before the failure")
        bridge.flush()
        calls = {"n": 0}

        def broken(self: Any, item: Any) -> bool:
            calls["n"] += 1
            raise RuntimeError("the SDK's queue changed")

        monkeypatch.setattr(log_queue.BatchQueue, "put", broken)
        for i in range(3):
            log.info("after the failure %d", i)
        bridge.flush()
        failed_puts = calls["n"]
        log.info("retired")
        bridge.flush()
        provider.force_flush()
        def from_the_app() -> list:
            return [r.body for r in receiver.logs() if r.scope == "seam"]

        bodies = receiver.wait_for(lambda: len(from_the_app()) >= 5 and from_the_app(), what="five records")
        assert sorted(bodies) == ["after the failure 0", "after the failure 1", "after the failure 2",
                                  "before the failure", "retired"]
        assert failed_puts >= 1 and calls["n"] == failed_puts  # retired: the fast path is not tried again
        assert _internal_errors.internal_error_counts() == {"sdk_private.log_queue": 1}
    finally:
        logs.remove_bridge()
        provider.shutdown()
