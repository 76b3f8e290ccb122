"""A test OTLP/HTTP receiver: decodes the real protobuf the exporters send.

It stands in for the Collector, which cannot run on the test machines.
Binds 127.0.0.1 on a free port; ``stop()`` closes it.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind is None:
        return None
    raw = getattr(any_value, kind)
    if kind == "array_value":
        return [_value(v) for v in raw.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in raw.values}
    return raw


def _attributes(key_values: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in key_values}


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str


@dataclass
class Point:
    attributes: dict[str, Any]
    value: float | None = None
    count: int | None = None
    sum: float | None = None
    bounds: list[float] = field(default_factory=list)
    bucket_counts: list[int] = field(default_factory=list)
    exemplar_trace_ids: list[str] = field(default_factory=list)


@dataclass
class Metric:
    name: str
    unit: str
    kind: str
    points: list[Point]
    resource: dict[str, Any]
    scope: str
    temporality: int = 0


@dataclass
class Log:
    body: Any
    severity_text: str
    severity_number: int
    trace_id: str
    span_id: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str


def _decode_spans(body: bytes) -> list[Span]:
    request = ExportTraceServiceRequest.FromString(body)
    out = []
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(Span(
                    name=s.name, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                    parent_span_id=s.parent_span_id.hex(), kind=s.kind,
                    status_code=s.status.code, status_message=s.status.message,
                    attributes=_attributes(s.attributes),
                    events=[(e.name, _attributes(e.attributes)) for e in s.events],
                    resource=resource, scope=ss.scope.name))
    return out


def _decode_metrics(body: bytes) -> list[Metric]:
    request = ExportMetricsServiceRequest.FromString(body)
    out = []
    for rm in request.resource_metrics:
        resource = _attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                points = []
                for p in data.data_points:
                    attrs = _attributes(p.attributes)
                    exemplars = [e.trace_id.hex() for e in getattr(p, "exemplars", ())]
                    if kind == "histogram":
                        points.append(Point(attrs, count=p.count, sum=p.sum,
                                            bounds=list(p.explicit_bounds),
                                            bucket_counts=list(p.bucket_counts), exemplar_trace_ids=exemplars))
                    elif kind in ("sum", "gauge"):
                        which = p.WhichOneof("value")
                        points.append(Point(attrs, value=getattr(p, which) if which else None,
                                            exemplar_trace_ids=exemplars))
                    else:
                        points.append(Point(attrs, count=getattr(p, "count", None)))
                out.append(Metric(m.name, m.unit, kind, points, resource, sm.scope.name,
                                  getattr(data, "aggregation_temporality", 0)))
    return out


def _decode_logs(body: bytes) -> list[Log]:
    request = ExportLogsServiceRequest.FromString(body)
    out = []
    for rl in request.resource_logs:
        resource = _attributes(rl.resource.attributes)
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append(Log(body=_value(r.body), severity_text=r.severity_text,
                               severity_number=r.severity_number, trace_id=r.trace_id.hex(),
                               span_id=r.span_id.hex(), attributes=_attributes(r.attributes),
                               resource=resource, scope=sl.scope.name))
    return out


_DECODERS: dict[str, Callable[[bytes], list[Any]]] = {
    "/v1/traces": _decode_spans, "/v1/metrics": _decode_metrics, "/v1/logs": _decode_logs}


def _partial_success(path: str, rejected: int, message: str) -> bytes:
    """The response body of a Collector that refused ``rejected`` items of the request."""
    if path == "/v1/traces":
        response: Any = ExportTraceServiceResponse()
        response.partial_success.rejected_spans = rejected
    elif path == "/v1/logs":
        response = ExportLogsServiceResponse()
        response.partial_success.rejected_log_records = rejected
    else:
        response = ExportMetricsServiceResponse()
        response.partial_success.rejected_data_points = rejected
    response.partial_success.error_message = message
    return response.SerializeToString()


class OtlpTestReceiver:
    """Collects what the exporters send; thread-safe accessors for the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, list[Any]] = {path: [] for path in _DECODERS}
        self.raw: list[tuple[str, bytes]] = []
        self.requests = 0
        self.errors: list[str] = []
        self.status = 200
        self.delay = 0.0  # seconds each answer waits: a slow Collector
        self.partial_success: tuple[int, str] | None = None  # (rejected items, message) in every answer
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self._read_body()
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                decoder = _DECODERS.get(self.path)
                status = receiver.status if decoder else 404
                if decoder and status == 200:
                    try:
                        items = decoder(body)
                    except Exception as err:  # e.g. two processes writing on one connection
                        with receiver._lock:
                            receiver.errors.append(f"{type(err).__name__}: {err}")
                        status = 400
                    else:
                        with receiver._lock:
                            receiver._items[self.path].extend(items)
                            receiver.raw.append((self.path, body))
                with receiver._lock:
                    receiver.requests += 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                answer = b""
                if receiver.partial_success is not None and decoder and status == 200:
                    answer = _partial_success(self.path, *receiver.partial_success)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length", 0)))
                # Node's OTLP exporters send chunked bodies (no Content-Length).
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()  # the empty trailer line
                return b"".join(chunks)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> OtlpTestReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpTestReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def spans(self) -> list[Span]:
        with self._lock:
            return list(self._items["/v1/traces"])

    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._items["/v1/metrics"])

    def logs(self) -> list[Log]:
        with self._lock:
            return list(self._items["/v1/logs"])

    def metric(self, name: str) -> list[Metric]:
        return [m for m in self.metrics() if m.name == name]

    def wait_for(self, condition: Callable[[], Any], timeout: float = 20.0,
                 what: str = "telemetry") -> Any:
        """Poll until ``condition()`` is truthy (bounded in time); return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = condition()
            if result:
                return result
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")
