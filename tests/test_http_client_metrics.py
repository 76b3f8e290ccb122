"""Several HTTP client instrumentations in one process: one duration stream each, and no SDK warning about it."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import BIN, ROOT, telemetry_env

pytestmark = pytest.mark.integration


def test_requests_and_httpx_record_durations_without_a_conflict_warning(receiver) -> None:
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-m", "tests.apps.http_clients"],
                          env=telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="http-clients"), cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0 and "both clients called" in output, output
    assert "conflicting metrics identities" not in output
    scopes = receiver.wait_for(
        lambda: {m.scope for m in receiver.metric("http.client.request.duration")} >= {
            "opentelemetry.instrumentation.requests", "opentelemetry.instrumentation.httpx"}
        and {m.scope for m in receiver.metric("http.client.request.duration")},
        what="a duration stream from each client")
    assert all(m.unit == "s" for m in receiver.metric("http.client.request.duration")), scopes
