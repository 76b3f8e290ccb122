"""otel_distro.otlp_wire: our OTLP bytes against the SDK's encoder, redaction, and the OTLP/HTTP wrappers."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http import _log_exporter as sdk_log_exporter
from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk_trace_exporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState

from otel_distro import otlp_wire, redaction
from otel_distro.redaction import REDACTED, Redactor, exporters
from tests.otlp_test_receiver import OtlpTestReceiver
from tests.secret_cases import embedded

EXAMPLES = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RULES = Redactor()
REDACTORS = pytest.mark.parametrize("redactor", [RULES, None], ids=["redacted", "plain"])

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0x00F067AA0BA902B7


# ---------------------------------------------------------------- the reference


class _Capture:
    """An exporter that keeps what it is given (so the wrappers take the copy-based path)."""

    def __init__(self) -> None:
        self.batch: Sequence[Any] = ()

    def export(self, batch: Sequence[Any]) -> Any:
        self.batch = batch
        return None


def sdk_spans(spans: Sequence[Any], redactor: Redactor | None) -> trace_service_pb2.ExportTraceServiceRequest:
    """What the SDK encoder makes of the spans the copy-based wrapper exports."""
    capture = _Capture()
    redaction.wrap_span_exporter(capture, redactor).export(spans)
    return encode_spans(capture.batch)


def sdk_logs(records: Sequence[Any], redactor: Redactor | None) -> logs_service_pb2.ExportLogsServiceRequest:
    capture = _Capture()
    redaction.wrap_log_exporter(capture, redactor).export(records)
    return encode_logs(capture.batch)


def assert_same(ours: bytes, reference: Any) -> None:
    decoded = type(reference).FromString(ours)
    # deterministic re-serialisation compares NaNs too and presence of empty sub-messages
    assert decoded.SerializeToString(deterministic=True) == reference.SerializeToString(deterministic=True)
    if not _has_nan(reference):
        assert decoded == reference
    # we write fields in field-number order, as protobuf does: the very same bytes
    assert ours == reference.SerializeToString()


def _has_nan(message: Any) -> bool:
    return "nan" in str(message)


# ---------------------------------------------------------------- strategies

_INT64 = st.integers(-(2**63), 2**63 - 1)
_TEXT = st.one_of(st.text(max_size=30), st.sampled_from(["", "é😀中", "a" * 200, "GET /users/{id}",
                                                         "password=hunter2", "bob@example.com"]))
_SCALAR = st.one_of(_TEXT, st.booleans(), _INT64, st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True, width=64), st.binary(max_size=20))
_HOMOGENEOUS = st.one_of(st.lists(_TEXT, max_size=4), st.lists(st.booleans(), max_size=4),
                         st.lists(_INT64, max_size=4), st.lists(st.floats(allow_nan=False), max_size=4),
                         st.tuples(_TEXT, _TEXT))
# what a span attribute may hold (plus None, and what a plain-dict ReadableSpan lets through)
_SPAN_VALUE = st.one_of(_SCALAR, _HOMOGENEOUS, st.none())
_KEYS = st.one_of(st.sampled_from(["http.request.method", "url.full", "password", "api_key", "db.statement",
                                   "user.email", "count", "", "session_id", "ключ"]), st.text(max_size=12))
_ANY = st.recursive(st.one_of(st.none(), _SCALAR),
                    lambda children: st.one_of(st.lists(children, max_size=4),
                                               st.dictionaries(_KEYS, children, max_size=4)),
                    max_leaves=12)
_LOG_BODY = st.recursive(st.one_of(st.none(), _TEXT, st.booleans(), _INT64, st.floats(allow_nan=False),
                                   st.binary(max_size=20)),
                         lambda children: st.one_of(st.lists(children, max_size=4),
                                                    st.dictionaries(_KEYS, children, max_size=4)),
                         max_leaves=12)

RESOURCES = [
    Resource({"service.name": "checkout", "deployment.environment": "prod", "db.password": "s3cr3t",
              "note": "call bob@example.com", "ports": (80, 443)}, "https://opentelemetry.io/schemas/1.26.0"),
    Resource({"service.name": "worker"}),
    Resource({}),
    Resource({"service.name": "worker"}),  # equal to the second, another object: one group for the SDK
]
SCOPES: list[InstrumentationScope | None] = [
    InstrumentationScope("app", "1.2.3", "https://opentelemetry.io/schemas/1.26.0", {"lib": "x", "n": 3}),
    InstrumentationScope("opentelemetry.instrumentation.httpx"),
    None,
    InstrumentationScope(""),
    InstrumentationScope("opentelemetry.instrumentation.httpx"),  # equal to the second
]


def _attributes(values: dict[str, Any], bounded: int | None) -> Any:
    if bounded is None:
        return values
    return BoundedAttributes(maxlen=bounded, attributes=values, immutable=False)


_attribute_maps = st.builds(_attributes, st.dictionaries(_KEYS, _SPAN_VALUE, max_size=8),
                            st.one_of(st.none(), st.integers(0, 4)))
_contexts = st.builds(
    lambda trace_id, span_id, remote, flags, state: SpanContext(trace_id, span_id, remote, TraceFlags(flags),
                                                                TraceState(state)),
    st.integers(1, 2**128 - 1), st.integers(1, 2**64 - 1), st.booleans(), st.sampled_from([0, 1]),
    st.lists(st.tuples(st.sampled_from(["vendor", "rojo", "congo"]), st.sampled_from(["t61rcWkgMzE", "00f0"])),
             max_size=2, unique_by=lambda kv: kv[0]))


def _bounded_list(items: list[Any], maxlen: int | None) -> Any:
    if maxlen is None:
        return items
    out = BoundedList(maxlen)
    out.extend(items)
    return out


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    events = [Event(draw(_TEXT), draw(_attribute_maps), draw(st.integers(0, 2**63)))
              for _ in range(draw(st.integers(0, 3)))]
    links = [Link(draw(_contexts), draw(_attribute_maps)) for _ in range(draw(st.integers(0, 2)))]
    code = draw(st.sampled_from(list(StatusCode)))
    status = draw(st.one_of(st.none(), st.just(Status(code)), st.builds(Status, st.just(code), _TEXT)))
    start = draw(st.one_of(st.none(), st.integers(0, 2**64 - 1)))
    return ReadableSpan(
        name=draw(_TEXT), context=draw(_contexts), parent=draw(st.one_of(st.none(), _contexts)),
        resource=draw(st.sampled_from(RESOURCES)), attributes=draw(_attribute_maps),
        events=_bounded_list(events, draw(st.one_of(st.none(), st.integers(0, 3)))),
        links=_bounded_list(links, draw(st.one_of(st.none(), st.integers(0, 2)))),
        kind=draw(st.sampled_from(list(SpanKind))), status=status, start_time=start,
        end_time=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        instrumentation_scope=draw(st.sampled_from(SCOPES)))


def make_record(body: Any = None, attributes: Any = None, *, trace_id: int = 0, span_id: int = 0,
                flags: int = 0, severity: SeverityNumber | None = None, severity_text: str | None = None,
                timestamp: int | None = None, observed: int | None = 1, event_name: str | None = None,
                resource: Resource = RESOURCES[0], scope: InstrumentationScope | None = SCOPES[0],
                ) -> ReadableLogRecord:
    record = LogRecord(timestamp=timestamp, observed_timestamp=observed, severity_text=severity_text,
                       severity_number=severity, body=body, attributes=attributes, event_name=event_name)
    record.trace_id, record.span_id, record.trace_flags = trace_id, span_id, TraceFlags(flags)
    return ReadableLogRecord(log_record=record, resource=resource, instrumentation_scope=scope)


@st.composite
def records(draw: st.DrawFn) -> ReadableLogRecord:
    valid = draw(st.booleans())
    values = draw(st.dictionaries(_KEYS, _ANY, max_size=6))
    bounded = draw(st.one_of(st.none(), st.integers(0, 4)))
    attributes = (values if bounded is None
                  else BoundedAttributes(maxlen=bounded, attributes=values, immutable=False,
                                         extended_attributes=True))
    return make_record(
        draw(_LOG_BODY), draw(st.one_of(st.none(), st.just(attributes))),
        trace_id=draw(st.integers(1, 2**128 - 1)) if valid else 0,
        span_id=draw(st.integers(1, 2**64 - 1)) if valid else 0, flags=draw(st.sampled_from([0, 1])),
        severity=draw(st.one_of(st.none(), st.sampled_from(list(SeverityNumber)))),
        severity_text=draw(st.one_of(st.none(), _TEXT)),
        timestamp=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        observed=draw(st.integers(0, 2**64 - 1)), event_name=draw(st.one_of(st.none(), _TEXT)),
        resource=draw(st.sampled_from(RESOURCES)), scope=draw(st.sampled_from(SCOPES)))


# ---------------------------------------------------------------- equivalence


@pytest.fixture(autouse=True)
def _quiet_sdk_encoder() -> Any:
    # Values that cannot be encoded (ints beyond int64) are logged with a traceback by both encoders.
    quiet = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    yield
    quiet.setLevel(level)


@REDACTORS
def test_random_span_batches_encode_as_the_sdk_does(redactor: Redactor | None) -> None:
    @EXAMPLES
    @given(st.lists(spans(), max_size=6))
    def check(batch: list[ReadableSpan]) -> None:
        assert_same(otlp_wire.Encoder(redactor).encode_spans(batch), sdk_spans(batch, redactor))

    check()


@REDACTORS
def test_random_log_batches_encode_as_the_sdk_does(redactor: Redactor | None) -> None:
    @EXAMPLES
    @given(st.lists(records(), max_size=6))
    def check(batch: list[ReadableLogRecord]) -> None:
        assert_same(otlp_wire.Encoder(redactor).encode_logs(batch), sdk_logs(batch, redactor))

    check()


def _real_spans() -> list[ReadableSpan]:
    """Spans made by a tracer: BoundedAttributes, limits, events, links, a remote parent."""
    from opentelemetry.sdk.trace import SpanLimits

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCES[0], span_limits=SpanLimits(max_span_attributes=16,
                                                                            max_events=2, max_links=1))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("app", "1.0", schema_url="https://opentelemetry.io/schemas/1.26.0",
                                 attributes={"tier": "web"})
    other = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy")
    remote = SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(1),
                         trace_state=TraceState([("rojo", "00f067aa0ba902b7")]))
    from opentelemetry.trace import NonRecordingSpan, set_span_in_context

    parent = set_span_in_context(NonRecordingSpan(remote))
    with tracer.start_as_current_span(
            "GET /users/{id}", context=parent, kind=SpanKind.SERVER,
            links=[Link(SpanContext(TRACE_ID, 7, False), {}),  # over max_links: dropped
                   Link(remote, {"why": "retry of token=abc123def456"})],
            attributes={"early.1": 1, "early.2": 2, "early.3": 3, "early.4": 4,  # over the limit: dropped
                        "http.request.method": "GET", "url.full": "https://api.example.com/u?api_key=K3Y9x8w7",
                        "http.response.status_code": 500, "server.port": 443, "big": -(2**63), "ok": False,
                        "ratio": 0.25, "tags": ["a", "b"], "ids": [1, -2, 3], "flags": [True], "raw": b"\x00\xff",
                        "authorization": "Bearer abcdefghijklmnopqrstuvwxyz0123", "empty": "", "": "no key",
                        "user.email": "jane.doe@example.com", "card": 4111111111111111}) as span:
        span.add_event("exception", {"exception.message": "login failed for password=hunter2",
                                     "exception.stacktrace": "Traceback ... sk-" + "A1b2" * 10})
        span.add_event("retry", {"attempt": 2})
        span.add_event("dropped", {})  # over max_events: counted, not kept
        span.set_status(Status(StatusCode.ERROR, "cannot reach postgres://app:Secr3tPw@db.internal/x"))
        with other.start_as_current_span("SELECT users", kind=SpanKind.CLIENT,
                                         attributes={"db.statement": "select * where password = 'x'"}):
            pass
        with tracer.start_as_current_span("render ✓ 日本語"):
            pass
    provider.shutdown()
    return list(memory.get_finished_spans())


@REDACTORS
def test_spans_from_a_tracer_encode_as_the_sdk_does(redactor: Redactor | None) -> None:
    batch = _real_spans()
    assert_same(otlp_wire.Encoder(redactor).encode_spans(batch), sdk_spans(batch, redactor))


def test_dropped_counts_survive_redaction_in_both_paths() -> None:
    batch = _real_spans()
    server = next(s for s in batch if s.name == "GET /users/{id}")
    assert (server.dropped_attributes, server.dropped_events, server.dropped_links) == (4, 1, 1)
    ours = trace_service_pb2.ExportTraceServiceRequest.FromString(otlp_wire.Encoder(RULES).encode_spans(batch))
    for request in (ours, sdk_spans(batch, RULES)):
        (encoded,) = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans
                      if s.name == "GET /users/{id}"]
        assert (encoded.dropped_attributes_count, encoded.dropped_events_count,
                encoded.dropped_links_count) == (4, 1, 1)


def test_remote_parent_and_link_flags() -> None:
    batch = _real_spans()
    request = trace_service_pb2.ExportTraceServiceRequest.FromString(otlp_wire.Encoder(None).encode_spans(batch))
    by_name = {s.name: s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans}
    server = by_name["GET /users/{id}"]
    assert server.flags == 0x300 and server.parent_span_id == SPAN_ID.to_bytes(8, "big")
    assert server.trace_state == "rojo=00f067aa0ba902b7" and server.links[0].flags == 0x300
    assert by_name["SELECT users"].flags == 0x100


def _edge_records() -> list[ReadableLogRecord]:
    other = Resource({"service.name": "other", "token": "abc"})
    return [
        make_record("login for bob@example.com with password=hunter2", {"api_key": "abc", "count": 3},
                    trace_id=TRACE_ID, span_id=SPAN_ID, flags=1, severity=SeverityNumber.WARN,
                    severity_text="WARNING", timestamp=1_700_000_000_000_000_000),
        make_record(None),
        make_record(""),
        make_record({"user": {"email": "jane@example.com", "password": "x", "tags": ["a", 1, None, 2.5]},
                     "list": [[], {}, b"bytes", b"\xff\xfe"], "": "empty key", "n": -1}),
        make_record([1, "two", 3.0, True, None, {"nested": ["deep", {"x": 4111111111111111}]}]),
        make_record(b"raw \x00 bytes with token=abcdef123456"),
        make_record(b"\xff\xfe not utf-8"),
        make_record(2**63 - 1, {"neg": -(2**63), "big_in_list": [1, 2**64]}),  # that key is left out
        make_record(4111111111111111, {"card": 5500000000000004, "float": -0.0, "inf": math.inf}),
        make_record("event", trace_id=TRACE_ID, span_id=0, event_name="user.login"),
        make_record("span only", trace_id=0, span_id=SPAN_ID),
        make_record("é😀中 unicode", {"ключ": "значение", "emoji 😀": ["🙂"]}, scope=None),
        make_record("other resource", resource=other, scope=SCOPES[1]),
        make_record("back to the first", scope=SCOPES[1]),
        make_record("equal resource, other object", resource=RESOURCES[3], scope=SCOPES[4]),
        make_record("and the first equal one", resource=RESOURCES[1], scope=SCOPES[1]),
        make_record("extended attributes", BoundedAttributes(
            maxlen=2, attributes={"a": {"map": 1}, "b": [1, 2], "c": "dropped"}, extended_attributes=True,
            immutable=False)),
        make_record(observed=0),
    ]


@REDACTORS
def test_log_edge_cases_encode_as_the_sdk_does(redactor: Redactor | None) -> None:
    batch = _edge_records()
    assert_same(otlp_wire.Encoder(redactor).encode_logs(batch), sdk_logs(batch, redactor))


@REDACTORS
def test_encoder_caches_do_not_leak_between_batches(redactor: Redactor | None) -> None:
    encoder = otlp_wire.Encoder(redactor)
    spans_batch, logs_batch = _real_spans(), _edge_records()
    for _ in range(3):
        assert_same(encoder.encode_spans(spans_batch), sdk_spans(spans_batch, redactor))
        assert_same(encoder.encode_logs(logs_batch[::-1]), sdk_logs(logs_batch[::-1], redactor))
    assert encoder.encode_spans([]) == encode_spans([]).SerializeToString() == b""


def test_a_log_body_that_cannot_be_encoded_fails_like_the_sdk() -> None:
    batch = [make_record(2**64)]
    with pytest.raises(ValueError):
        encode_logs(batch)
    with pytest.raises(ValueError):
        otlp_wire.Encoder(None).encode_logs(batch)


def test_a_resource_is_encoded_and_redacted_once() -> None:
    calls: list[Any] = []

    class Counting(Redactor):
        def attributes(self, attributes: Any) -> Any:
            calls.append(dict(attributes or {}))
            return super().attributes(attributes)

    encoder = otlp_wire.Encoder(Counting())
    batch = [make_record("x", scope=SCOPES[i % 2]) for i in range(10)]
    encoder.encode_logs(batch)
    encoder.encode_logs(batch)
    resource_calls = [c for c in calls if "service.name" in c]
    scope_calls = [c for c in calls if c == {"lib": "x", "n": 3}]  # SCOPES[0]'s attributes, redacted too
    assert len(resource_calls) == 1 and len(scope_calls) == 1 and len(calls) == 2


def test_a_repeated_attribute_is_redacted_and_encoded_once_per_encoder() -> None:
    judged: list[tuple[str, Any]] = []

    class Counting(Redactor):
        def value(self, key: Any, value: Any) -> Any:
            judged.append((key, value))
            return super().value(key, value)

    encoder = otlp_wire.Encoder(Counting())
    batch = [make_record("x", attributes={"route": "/items", "status": 200, "password": "hunter2",
                                          "n": i % 2}) for i in range(10)]
    first, second = encoder.encode_logs(batch), encoder.encode_logs(batch)
    assert first == second and b"hunter2" not in first and b"[REDACTED]" in first
    # not the resource's, nor the scope's ("n": 3, judged once too)
    mine = [(k, v) for k, v in judged if k in ("route", "status", "password", "n") and (k, v) != ("n", 3)]
    assert sorted(mine, key=repr) == sorted([("route", "/items"), ("status", 200), ("password", "hunter2"),
                                               ("n", 0), ("n", 1)], key=repr)


# ---------------------------------------------------------------- secrets


@settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(embedded(), embedded())
def test_no_secret_reaches_the_bytes(first: Any, second: Any) -> None:
    (case, text), (other, other_text) = first, second
    attributes = {"note": text, "list": [other_text, "x"]}
    if case.key:
        attributes[case.key] = case.text
    if other.key:
        attributes[other.key] = [other.text]
    span = ReadableSpan(
        name=text, context=SpanContext(TRACE_ID, SPAN_ID, False), resource=Resource({"r": other_text}),
        attributes=attributes, events=[Event("exception", {"exception.message": other_text})],
        links=[Link(SpanContext(TRACE_ID, 5, False), {"l": text})], status=Status(StatusCode.ERROR, other_text),
        start_time=1, end_time=2)
    record = make_record({"message": text, "extra": [other_text, {"deep": text}]}, dict(attributes),
                         resource=Resource({"r": text}))
    wire = otlp_wire.Encoder(RULES)
    encoded = wire.encode_spans([span]) + wire.encode_logs([record]) + wire.encode_logs([make_record(other_text)])
    for needle in case.needles + other.needles:
        assert needle.encode() not in encoded, needle
    # and nothing was redacted without the rules
    plain = otlp_wire.Encoder(None).encode_spans([span])
    assert case.text.encode() in plain


# ---------------------------------------------------------------- field numbers

_MESSAGES = {
    "ExportTraceServiceRequest": trace_service_pb2.ExportTraceServiceRequest,
    "ExportLogsServiceRequest": logs_service_pb2.ExportLogsServiceRequest,
    "ResourceSpans": trace_pb2.ResourceSpans, "ScopeSpans": trace_pb2.ScopeSpans, "Span": trace_pb2.Span,
    "Span.Event": trace_pb2.Span.Event, "Span.Link": trace_pb2.Span.Link, "Status": trace_pb2.Status,
    "ResourceLogs": logs_pb2.ResourceLogs, "ScopeLogs": logs_pb2.ScopeLogs, "LogRecord": logs_pb2.LogRecord,
    "Resource": resource_pb2.Resource, "InstrumentationScope": common_pb2.InstrumentationScope,
    "KeyValue": common_pb2.KeyValue, "AnyValue": common_pb2.AnyValue, "ArrayValue": common_pb2.ArrayValue,
    "KeyValueList": common_pb2.KeyValueList,
}


def _wire_type(field: Any) -> int:
    types = field.__class__
    if field.type in (types.TYPE_STRING, types.TYPE_BYTES, types.TYPE_MESSAGE):
        return 2
    if field.type in (types.TYPE_FIXED64, types.TYPE_DOUBLE, types.TYPE_SFIXED64):
        return 1
    if field.type in (types.TYPE_FIXED32, types.TYPE_FLOAT, types.TYPE_SFIXED32):
        return 5
    return 0


@pytest.mark.parametrize(("message", "field"), sorted(otlp_wire.FIELDS))
def test_field_numbers_match_the_descriptors(message: str, field: str) -> None:
    descriptor = _MESSAGES[message].DESCRIPTOR.fields_by_name[field]
    assert otlp_wire.FIELDS[(message, field)] == (descriptor.number, _wire_type(descriptor))


def test_logs_and_spans_share_the_outer_field_numbers() -> None:
    same = {("ExportTraceServiceRequest", "resource_spans"): ("ExportLogsServiceRequest", "resource_logs"),
            ("ResourceSpans", "resource"): ("ResourceLogs", "resource"),
            ("ResourceSpans", "scope_spans"): ("ResourceLogs", "scope_logs"),
            ("ResourceSpans", "schema_url"): ("ResourceLogs", "schema_url"),
            ("ScopeSpans", "scope"): ("ScopeLogs", "scope"),
            ("ScopeSpans", "spans"): ("ScopeLogs", "log_records"),
            ("ScopeSpans", "schema_url"): ("ScopeLogs", "schema_url")}
    for spans_field, logs_field in same.items():
        assert otlp_wire.FIELDS[spans_field] == otlp_wire.FIELDS[logs_field]


def test_span_kinds_and_flags_match_the_descriptors() -> None:
    for name, value in otlp_wire.SPAN_KINDS.items():
        assert trace_pb2.Span.SpanKind.Value(f"SPAN_KIND_{name}") == value
        assert SpanKind[name] in otlp_wire._KINDS
    assert trace_pb2.SpanFlags.Value("SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK") == otlp_wire.FLAG_HAS_IS_REMOTE
    assert trace_pb2.SpanFlags.Value("SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK") == otlp_wire.FLAG_IS_REMOTE


# ---------------------------------------------------------------- the OTLP/HTTP wrappers


def _span_exporter(receiver: OtlpTestReceiver, **kwargs: Any) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{receiver.endpoint}/v1/traces", timeout=1, **kwargs)


def _log_exporter(receiver: OtlpTestReceiver, **kwargs: Any) -> OTLPLogExporter:
    return OTLPLogExporter(endpoint=f"{receiver.endpoint}/v1/logs", timeout=1, **kwargs)


@pytest.fixture
def sdk_encoders_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK exporters' own encoding fails: what arrives was encoded by us."""
    def refuse(batch: Any) -> Any:
        raise AssertionError("the SDK encoder was used")

    monkeypatch.setattr(sdk_trace_exporter, "encode_spans", refuse)
    monkeypatch.setattr(sdk_log_exporter, "encode_logs", refuse)


@REDACTORS
def test_spans_reach_the_receiver_through_our_encoding(receiver: OtlpTestReceiver, sdk_encoders_off: None,
                                                       redactor: Redactor | None) -> None:
    wrapped = redaction.wrap_span_exporter(_span_exporter(receiver), redactor)
    assert isinstance(wrapped.exporter, exporters.EncodingSpanExporter)
    batch = _real_spans()
    assert wrapped.export(batch) is SpanExportResult.SUCCESS
    got = {s.name: s for s in receiver.spans()}
    assert set(got) == {"GET /users/{id}", "SELECT users", "render ✓ 日本語"}
    server = got["GET /users/{id}"]
    assert server.resource["service.name"] == "checkout" and server.scope == "app"
    assert server.attributes["http.response.status_code"] == 500
    if redactor is None:
        assert server.attributes["authorization"].endswith("0123")
        assert server.resource["db.password"] == "s3cr3t"
    else:
        assert server.attributes["authorization"] == REDACTED
        assert server.resource["db.password"] == REDACTED
        assert server.status_message == "cannot reach postgres://app:[REDACTED]@db.internal/x"
        assert "hunter2" not in str(server.events)
    (_, raw), = receiver.raw
    assert_same(raw, sdk_spans(batch, redactor))
    wrapped.shutdown()


@REDACTORS
def test_logs_reach_the_receiver_through_our_encoding(receiver: OtlpTestReceiver, sdk_encoders_off: None,
                                                      redactor: Redactor | None) -> None:
    wrapped = redaction.wrap_log_exporter(_log_exporter(receiver), redactor)
    assert isinstance(wrapped, exporters.EncodingLogExporter)
    batch = _edge_records()
    assert wrapped.export(batch) is LogRecordExportResult.SUCCESS
    got = receiver.logs()
    assert len(got) == len(batch)
    login = got[0]
    assert login.severity_number == SeverityNumber.WARN.value and login.trace_id == f"{TRACE_ID:032x}"
    if redactor is None:
        assert login.body == "login for bob@example.com with password=hunter2"
    else:
        assert login.body == f"login for b***@example.com with password={REDACTED}"
        assert login.attributes == {"api_key": REDACTED, "count": 3}
    (_, raw), = receiver.raw
    assert_same(raw, sdk_logs(batch, redactor))
    wrapped.shutdown()


def test_a_stopped_receiver_is_a_failure_not_an_exception(receiver: OtlpTestReceiver) -> None:
    spans_out = redaction.wrap_span_exporter(_span_exporter(receiver), RULES)
    logs_out = redaction.wrap_log_exporter(_log_exporter(receiver), None)
    receiver.stop()
    assert spans_out.export(_real_spans()) is SpanExportResult.FAILURE
    assert logs_out.export(_edge_records()) is LogRecordExportResult.FAILURE


def test_a_rejected_request_is_a_failure(receiver: OtlpTestReceiver) -> None:
    receiver.status = 400
    wrapped = redaction.wrap_log_exporter(_log_exporter(receiver), RULES)
    assert wrapped.export(_edge_records()) is LogRecordExportResult.FAILURE
    assert receiver.requests == 1


def test_shutdown_and_size_limit_behave_as_the_sdk_exporter(receiver: OtlpTestReceiver,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    small = redaction.wrap_span_exporter(_span_exporter(receiver, max_request_size=100), RULES)
    with caplog.at_level(logging.WARNING):
        assert small.export(_real_spans()) is SpanExportResult.FAILURE
        assert "exceeds max_request_size 100 bytes" in caplog.text
        wrapped = redaction.wrap_log_exporter(_log_exporter(receiver), RULES)
        wrapped.shutdown()
        assert wrapped.export(_edge_records()) is LogRecordExportResult.FAILURE
        assert "Exporter already shutdown, ignoring batch" in caplog.text
    assert receiver.requests == 0


def test_our_encoder_failing_falls_back_to_the_sdk_path(receiver: OtlpTestReceiver, production_errors: None,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}

    def broken(self: Any, batch: Any) -> bytes:
        calls["n"] += 1
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(otlp_wire.Encoder, "encode_spans", broken)
    wrapped = redaction.wrap_span_exporter(_span_exporter(receiver), RULES)
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        assert wrapped.export(_real_spans()) is SpanExportResult.SUCCESS
        assert wrapped.export(_real_spans()) is SpanExportResult.SUCCESS
    assert calls["n"] == 1  # retired at its first failure: the SDK's way from then on
    assert len([r for r in caplog.records if "otlp_http_sender.spans is off" in r.getMessage()]) == 1
    server = next(s for s in receiver.spans() if s.name == "GET /users/{id}")
    assert server.attributes["authorization"] == REDACTED  # the copies were redacted


def test_a_failing_rule_still_drops_the_batch(receiver: OtlpTestReceiver, production_errors: None) -> None:
    class Broken(Redactor):
        def any_value(self, value: Any) -> Any:
            raise RuntimeError("boom")

    wrapped = redaction.wrap_log_exporter(_log_exporter(receiver), Broken())
    assert wrapped.export(_edge_records()) is LogRecordExportResult.FAILURE
    assert receiver.requests == 0


def test_an_item_a_rule_fails_on_is_dropped_alone(receiver: OtlpTestReceiver, production_errors: None,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    class FailsOnPoison(Redactor):
        def any_value(self, value: Any) -> Any:
            if value == "poison":
                raise RuntimeError("boom")
            return super().any_value(value)

    records = [make_record("first"), make_record("poison"), make_record("last")]
    wrapped = exporters.RedactingLogExporter(_log_exporter(receiver), FailsOnPoison())
    with caplog.at_level(logging.WARNING, logger="otel_distro"):
        assert wrapped.export(records) is LogRecordExportResult.SUCCESS
    assert sorted(r.body for r in receiver.logs()) == ["first", "last"]
    assert len([r for r in caplog.records if "redaction of log records failed" in r.getMessage()]) == 1


def test_other_exporters_keep_the_copy_path(receiver: OtlpTestReceiver) -> None:
    class Custom(OTLPSpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return super().export(spans)

    custom = Custom(endpoint=f"{receiver.endpoint}/v1/traces")
    assert type(redaction.wrap_span_exporter(custom, RULES).exporter) is exporters.RedactingSpanExporter
    assert redaction.wrap_span_exporter(custom, None).exporter is custom
    memory = InMemorySpanExporter()
    assert redaction.wrap_span_exporter(memory, None).exporter is memory
    assert type(redaction.wrap_span_exporter(memory, RULES).exporter) is exporters.RedactingSpanExporter
    odd = _log_exporter(receiver)
    del odd._client  # an SDK whose exporter is built differently
    assert type(redaction.wrap_log_exporter(odd, RULES)) is exporters.RedactingLogExporter
    assert type(redaction.wrap_log_exporter(_log_exporter(receiver), RULES)) is exporters.EncodingLogExporter


def test_a_lone_surrogate_is_escaped_wherever_it_is_and_the_batch_keeps_the_rest(production_errors) -> None:
    bad = "report-\udcff.csv"
    spans = _real_spans()
    spans[1]._name = bad
    record = make_record(bad, attributes={bad: [bad, "ok"], "plain": bad})
    encoder = otlp_wire.Encoder(RULES)
    decoded = trace_service_pb2.ExportTraceServiceRequest.FromString(encoder.encode_spans(spans))
    names = [s.name for rs in decoded.resource_spans for ss in rs.scope_spans for s in ss.spans]
    assert len(names) == len(spans) and "report-\\udcff.csv" in names
    logs_request = logs_service_pb2.ExportLogsServiceRequest.FromString(encoder.encode_logs([record]))
    (log_record,) = logs_request.resource_logs[0].scope_logs[0].log_records
    assert log_record.body.string_value == "report-\\udcff.csv"
    assert {kv.key for kv in log_record.attributes} == {"report-\\udcff.csv", "plain"}
