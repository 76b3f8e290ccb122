"""Exporter-thread CPU per span and per log record: copies + SDK encoder against otel_distro.otlp_wire.

    .venv/bin/python bench/bench_encode.py [--rounds 7] [--repeat 5]

What the OTLP/HTTP exporter's thread does per batch before the POST, for a
batch of 512 typical HTTP server spans (11 attributes) and one of 2048 log
records (3 attributes, inside a span), all sharing one resource and scope:

- old, redacted: the copy-based wrapper (``RedactingSpanExporter`` /
  ``RedactingLogExporter``) redacts copies, then the SDK's ``encode_spans`` /
  ``encode_logs`` + ``SerializePartialToString`` / ``SerializeToString``;
- old, plain (redaction off): the SDK encoder alone;
- new, redacted / plain: ``otlp_wire.Encoder(Redactor() / None)``.

The variants run interleaved, round by round; each round times ``--repeat``
batches per variant. Reported: the median over rounds of µs per item, and
old/new ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_distro import otlp_wire, redaction
from otel_distro.redaction import exporters as redacting_exporters

SPANS = 512
LOGS = 2048
RESOURCE = Resource({
    "service.name": "checkout", "service.version": "1.4.2", "service.namespace": "shop",
    "deployment.environment.name": "production", "service.instance.id": "8f1c2a9e-3b7d-4e1f-9a2b-6c5d4e3f2a1b",
    "host.name": "checkout-7d9f8b6c5-x2k4p", "process.pid": 4242, "process.runtime.name": "cpython",
    "process.runtime.version": "3.11.9", "telemetry.sdk.language": "python", "telemetry.sdk.name": "opentelemetry",
    "telemetry.sdk.version": "1.45.0", "telemetry.distro.name": "otel-distro"})


def make_spans() -> list[Any]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otel_distro.integrations.asgi", "0.1.0")
    for i in range(SPANS):
        with tracer.start_as_current_span("GET /api/orders/{order_id}", kind=SpanKind.SERVER, attributes={
                "http.request.method": "GET", "url.scheme": "https", "url.path": f"/api/orders/{1000 + i}",
                "url.query": "expand=items&page=2", "http.route": "/api/orders/{order_id}",
                "http.response.status_code": 200, "server.address": "shop.example.com", "server.port": 443,
                "client.address": "10.1.2.3", "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
                "network.protocol.version": "1.1"}) as span:
            span.set_status(Status(StatusCode.UNSET))
    provider.shutdown()
    return list(memory.get_finished_spans())


def make_logs() -> list[Any]:
    memory = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    logger = provider.get_logger("app.orders")
    tracer = TracerProvider(resource=RESOURCE).get_tracer("t")
    with tracer.start_as_current_span("request"):
        for i in range(LOGS):
            logger.emit(LogRecord(
                timestamp=time.time_ns(), severity_number=SeverityNumber.INFO, severity_text="INFO",
                body=f"order A-{i} created for 3 items", attributes={
                    "tenant": "acme", "code.file.path": "/srv/app/orders/service.py", "code.line.number": 118}))
    provider.shutdown()
    return list(memory.get_finished_logs())


class _Sink:
    """What the SDK's OTLP/HTTP exporter does with a batch before the POST."""

    def __init__(self, encode: Callable[[Sequence[Any]], Any]) -> None:
        self.encode = encode
        self.size = 0

    def export(self, batch: Sequence[Any]) -> None:
        self.size = len(encode_and_serialize(self.encode, batch))


def encode_and_serialize(encode: Callable[[Sequence[Any]], Any], batch: Sequence[Any]) -> bytes:
    return encode(batch).SerializeToString()


def variants(spans: list[Any], records: list[Any]) -> dict[str, Callable[[], Any]]:
    rules = redaction.Redactor()
    old_spans = redacting_exporters.RedactingSpanExporter(_Sink(encode_spans), rules)
    old_logs = redacting_exporters.RedactingLogExporter(_Sink(encode_logs), rules)
    new_redacted, new_plain = otlp_wire.Encoder(rules), otlp_wire.Encoder(None)
    return {
        "spans, redacted, old": lambda: old_spans.export(spans),
        "spans, redacted, new": lambda: new_redacted.encode_spans(spans),
        "spans, plain, old": lambda: encode_and_serialize(encode_spans, spans),
        "spans, plain, new": lambda: new_plain.encode_spans(spans),
        "logs, redacted, old": lambda: old_logs.export(records),
        "logs, redacted, new": lambda: new_redacted.encode_logs(records),
        "logs, plain, old": lambda: encode_and_serialize(encode_logs, records),
        "logs, plain, new": lambda: new_plain.encode_logs(records),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    spans, records = make_spans(), make_logs()
    sizes = {"spans": len(spans), "logs": len(records)}
    runs = variants(spans, records)
    # same bytes either way (with redaction off the SDK encodes the originals)
    assert runs["spans, plain, new"]() == encode_spans(spans).SerializeToString()
    assert runs["logs, plain, new"]() == encode_logs(records).SerializeToString()
    for run in runs.values():  # warm-up: caches, lazy imports
        run()
    timings: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(args.repeat):
                run()
            elapsed = time.perf_counter() - start
            timings[name].append(elapsed / args.repeat / sizes[name.split(",")[0]] * 1e6)
    median = {name: statistics.median(values) for name, values in timings.items()}
    print(f"{len(spans)} spans/batch, {len(records)} log records/batch, {args.rounds} rounds x {args.repeat} batches")
    print(f"{'item, redaction':<22} {'old µs':>8} {'new µs':>8} {'old/new':>8}")
    for item in ("spans", "logs"):
        for mode in ("redacted", "plain"):
            old, new = median[f"{item}, {mode}, old"], median[f"{item}, {mode}, new"]
            print(f"{item + ', ' + mode:<22} {old:8.2f} {new:8.2f} {old / new:8.2f}")


if __name__ == "__main__":
    main()
