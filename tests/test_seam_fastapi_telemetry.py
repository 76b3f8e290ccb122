"""FastAPI's own telemetry seam: turned off behind the distro's middleware; when that fails, requests still work."""

from __future__ import annotations

import asyncio
import inspect

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_distro import _internal_errors
from otel_distro._sdk_private import fastapi_telemetry as seam
from tests.conftest import fresh_guards

pytestmark = pytest.mark.skipif(
    "telemetry" not in inspect.signature(FastAPI.__init__).parameters,
    reason="this FastAPI (< 0.142) has no telemetry of its own: there is nothing to turn off")


def _app_tracing_itself() -> tuple[FastAPI, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    app = FastAPI(telemetry={"tracer_provider": provider})

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    return app, spans


def _get(app: FastAPI, path: str) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://shop") as client:
            return (await client.get(path)).status_code

    return asyncio.run(go())


def test_fastapi_stops_tracing_its_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh_guards(monkeypatch, seam, "TURN_OFF", "OWN_PROVIDERS")
    left_on, native = _app_tracing_itself()
    assert _get(left_on, "/items/1") == 200 and len(native.get_finished_spans()) >= 1  # what is turned off
    app, spans = _app_tracing_itself()
    seam.turn_off_native_telemetry(app)
    assert _get(app, "/items/1") == 200
    assert spans.get_finished_spans() == ()


def test_when_turning_it_off_fails_requests_are_served_and_traced_and_it_is_reported_once(
        production_errors, monkeypatch: pytest.MonkeyPatch) -> None:
    def renamed(app: FastAPI) -> None:
        raise AttributeError("'FastAPI' object has no attribute '_telemetry'")

    monkeypatch.setattr(seam, "_turn_off", renamed)
    guard = fresh_guards(monkeypatch, seam, "TURN_OFF", "OWN_PROVIDERS")[0]
    app, spans = _app_tracing_itself()
    seam.turn_off_native_telemetry(app)
    seam.turn_off_native_telemetry(app)
    assert [_get(app, "/items/1"), _get(app, "/items/2")] == [200, 200]
    assert len(spans.get_finished_spans()) >= 2
    assert not guard.active
    assert _internal_errors.internal_error_counts() == {"sdk_private.fastapi_telemetry": 1}
