"""The lean HTTP middleware: one span and one histogram point per request, semconv names."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from otel_distro.integrations.asgi import TelemetryMiddleware, excluded_paths_matcher
from otel_distro.metrics import SECONDS_BUCKETS

OFF = {"tracing": False, "metrics": False, "logs": False}  # FastAPI's own telemetry


def _shop() -> FastAPI:
    app = FastAPI(telemetry=OFF)
    sub = FastAPI(telemetry=OFF)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict:
        return {"id": item_id}

    @app.get("/boom")
    async def boom() -> dict:
        raise ValueError("kaput")

    @sub.get("/orders/{order_id}")
    async def order(order_id: int) -> dict:
        return {"order": order_id}

    app.mount("/v2", sub)
    return app


class Rig:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.app = TelemetryMiddleware(_shop(), excluded_paths_matcher(["/health"]),
                                       tracer_provider=tracer_provider,
                                       meter_provider=MeterProvider(metric_readers=[self.reader]))

    def request(self, method: str, path: str, headers: dict | None = None) -> int:
        async def go() -> int:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                return (await client.request(method, path, headers=headers)).status_code

        return asyncio.run(go())

    def points(self) -> list:
        data = self.reader.get_metrics_data()
        if data is None:  # nothing recorded at all
            return []
        return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
                if m.name == "http.server.request.duration" for p in m.data.data_points]


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_one_server_span_named_by_the_route_template(rig: Rig) -> None:
    assert rig.request("GET", "/items/7") == 200
    (span,) = rig.spans.get_finished_spans()
    assert span.name == "GET /items/{item_id}" and span.kind is SpanKind.SERVER
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["url.path"] == "/items/7"
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


def test_mounted_routes_keep_their_prefix(rig: Rig) -> None:
    rig.request("GET", "/v2/orders/3")
    (span,) = rig.spans.get_finished_spans()
    assert span.name == "GET /v2/orders/{order_id}"


def test_unmatched_path_has_no_route(rig: Rig) -> None:
    assert rig.request("GET", "/nowhere") == 404
    (span,) = rig.spans.get_finished_spans()
    assert span.name == "GET" and "http.route" not in span.attributes


def test_exception_marks_the_span_and_the_metric(rig: Rig) -> None:
    assert rig.request("GET", "/boom") == 500
    (span,) = rig.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "ValueError"
    (event,) = span.events
    assert event.name == "exception" and event.attributes["exception.message"] == "kaput"
    (point,) = rig.points()
    assert point.attributes["error.type"] == "ValueError"
    assert point.attributes["http.response.status_code"] == 500


def test_incoming_trace_context_is_continued(rig: Rig) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    rig.request("GET", "/items/1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    (span,) = rig.spans.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert format(span.parent.span_id, "016x") == parent_id


def test_unknown_method_is_other(rig: Rig) -> None:
    rig.request("PURGE", "/items/1")
    (span,) = rig.spans.get_finished_spans()
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"
    assert span.name.startswith("HTTP")


def test_excluded_paths_are_neither_traced_nor_measured(rig: Rig) -> None:
    rig.request("GET", "/health")
    rig.request("GET", "/health/ready")
    assert list(rig.spans.get_finished_spans()) == []
    assert rig.points() == []


def test_duration_in_seconds_with_semconv_buckets(rig: Rig) -> None:
    rig.request("GET", "/items/1")
    rig.request("GET", "/items/2")
    (point,) = rig.points()
    assert point.count == 2 and tuple(point.explicit_bounds) == SECONDS_BUCKETS
    assert point.attributes == {"http.request.method": "GET", "url.scheme": "http",
                                "http.route": "/items/{item_id}", "http.response.status_code": 200}
    assert 0 < point.sum < 1


@pytest.mark.parametrize("path,excluded", [("/health", True), ("/health/ready", True),
                                           ("/healthy", False), ("/api/health", False)])
def test_excluded_paths_matcher(path: str, excluded: bool) -> None:
    assert excluded_paths_matcher(["/health"])(path) is excluded
