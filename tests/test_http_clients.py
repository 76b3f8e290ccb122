"""Outgoing HTTP calls under opentelemetry-instrument: CLIENT spans and durations from every installed client."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import BIN, ROOT, telemetry_env

pytestmark = pytest.mark.integration

CLIENT = 3  # OTLP SpanKind


def test_requests_and_httpx_both_report_without_a_conflicting_view_warning(receiver) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="two-clients")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"),
                           str(ROOT / "tests" / "apps" / "two_http_clients.py")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "called" in done.stdout, done.stderr
    assert "conflicting metrics identities" not in done.stderr
    receiver.wait_for(lambda: len([s for s in receiver.spans() if s.kind == CLIENT]) >= 2, what="client spans")
    clients = [s for s in receiver.spans() if s.kind == CLIENT]
    assert {s.scope for s in clients} == {"opentelemetry.instrumentation.requests",
                                          "opentelemetry.instrumentation.httpx"}
    for span in clients:
        assert span.attributes["http.response.status_code"] == 200
        assert "s3cr3t" not in str(span.attributes)  # the URL's query passed through redaction
    receiver.wait_for(lambda: {m.scope for m in receiver.metric("http.client.request.duration")} >= {
        "opentelemetry.instrumentation.requests", "opentelemetry.instrumentation.httpx"}, what="both durations")
    assert all(m.unit == "s" for m in receiver.metric("http.client.request.duration"))
