"""OTLP protobuf bytes straight from SDK spans and log records, redacted on the way.

The SDK's OTLP exporters build a tree of protobuf objects per batch
(``encode_spans``/``encode_logs``) and serialise it; with redaction on, the
distro used to build redacted copies of every span and record first, and the
SDK hashed the Resource (``json.dumps`` of its attributes) once per item to
group them. This module writes the protobuf wire format of an
``ExportTraceServiceRequest``/``ExportLogsServiceRequest`` directly, applying
a :class:`~otel_distro.redaction.Redactor` (or none) to each value as it goes:
no copies, no protobuf objects, every Resource and InstrumentationScope
encoded once (cached by identity, never hashed).

The result decodes to the message the SDK encoder (opentelemetry-sdk 1.45,
``opentelemetry.exporter.otlp.proto.common._internal``) makes of the redacted
copies the copy-based wrappers in :mod:`otel_distro.redaction` build, field for
field, including its quirks: span ``flags`` carry only the has/is-remote-parent
bits, links carry no trace_state, an empty AnyValue is written for a ``None``
value, a status and a resource are always present, an attribute that cannot
be encoded is left out (and logged, as the SDK does) while a log body that
cannot be encoded fails the batch. One difference: text that is not valid
Unicode (a lone surrogate, which ``os.fsdecode`` gives for a file name that is
not UTF-8) fails the SDK's whole batch; here it is written with backslash
escapes (``\\udcff``) and reported once, and the rest of the batch is unchanged. ``tests/test_otlp_wire.py`` checks this
against the SDK encoder, and the field numbers below against the descriptors.

Stdlib only; nothing here imports protobuf.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

# The SDK encoder's logger: an attribute it cannot encode is reported there.
_sdk_log = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")

_pack_fixed64 = struct.Struct("<Q").pack
_pack_fixed32 = struct.Struct("<I").pack
_pack_double = struct.Struct("<d").pack

_BYTE = [bytes((i,)) for i in range(128)]
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_UINT64 = 1 << 64

# ---------------------------------------------------------------- field numbers
# (message, field) -> (number, wire type). Wire types: 0 varint, 1 fixed64, 2 length-delimited,
# 5 fixed32. tests/test_otlp_wire.py checks every entry against the generated descriptors.
FIELDS: dict[tuple[str, str], tuple[int, int]] = {
    ("ExportTraceServiceRequest", "resource_spans"): (1, 2),
    ("ExportLogsServiceRequest", "resource_logs"): (1, 2),
    ("ResourceSpans", "resource"): (1, 2),
    ("ResourceSpans", "scope_spans"): (2, 2),
    ("ResourceSpans", "schema_url"): (3, 2),
    ("ResourceLogs", "resource"): (1, 2),
    ("ResourceLogs", "scope_logs"): (2, 2),
    ("ResourceLogs", "schema_url"): (3, 2),
    ("ScopeSpans", "scope"): (1, 2),
    ("ScopeSpans", "spans"): (2, 2),
    ("ScopeSpans", "schema_url"): (3, 2),
    ("ScopeLogs", "scope"): (1, 2),
    ("ScopeLogs", "log_records"): (2, 2),
    ("ScopeLogs", "schema_url"): (3, 2),
    ("Resource", "attributes"): (1, 2),
    ("InstrumentationScope", "name"): (1, 2),
    ("InstrumentationScope", "version"): (2, 2),
    ("InstrumentationScope", "attributes"): (3, 2),
    ("KeyValue", "key"): (1, 2),
    ("KeyValue", "value"): (2, 2),
    ("AnyValue", "string_value"): (1, 2),
    ("AnyValue", "bool_value"): (2, 0),
    ("AnyValue", "int_value"): (3, 0),
    ("AnyValue", "double_value"): (4, 1),
    ("AnyValue", "array_value"): (5, 2),
    ("AnyValue", "kvlist_value"): (6, 2),
    ("AnyValue", "bytes_value"): (7, 2),
    ("ArrayValue", "values"): (1, 2),
    ("KeyValueList", "values"): (1, 2),
    ("Span", "trace_id"): (1, 2),
    ("Span", "span_id"): (2, 2),
    ("Span", "trace_state"): (3, 2),
    ("Span", "parent_span_id"): (4, 2),
    ("Span", "name"): (5, 2),
    ("Span", "kind"): (6, 0),
    ("Span", "start_time_unix_nano"): (7, 1),
    ("Span", "end_time_unix_nano"): (8, 1),
    ("Span", "attributes"): (9, 2),
    ("Span", "dropped_attributes_count"): (10, 0),
    ("Span", "events"): (11, 2),
    ("Span", "dropped_events_count"): (12, 0),
    ("Span", "links"): (13, 2),
    ("Span", "dropped_links_count"): (14, 0),
    ("Span", "status"): (15, 2),
    ("Span", "flags"): (16, 5),
    ("Span.Event", "time_unix_nano"): (1, 1),
    ("Span.Event", "name"): (2, 2),
    ("Span.Event", "attributes"): (3, 2),
    ("Span.Event", "dropped_attributes_count"): (4, 0),
    ("Span.Link", "trace_id"): (1, 2),
    ("Span.Link", "span_id"): (2, 2),
    ("Span.Link", "attributes"): (4, 2),
    ("Span.Link", "dropped_attributes_count"): (5, 0),
    ("Span.Link", "flags"): (6, 5),
    ("Status", "message"): (2, 2),
    ("Status", "code"): (3, 0),
    ("LogRecord", "time_unix_nano"): (1, 1),
    ("LogRecord", "severity_number"): (2, 0),
    ("LogRecord", "severity_text"): (3, 2),
    ("LogRecord", "body"): (5, 2),
    ("LogRecord", "attributes"): (6, 2),
    ("LogRecord", "dropped_attributes_count"): (7, 0),
    ("LogRecord", "flags"): (8, 5),
    ("LogRecord", "trace_id"): (9, 2),
    ("LogRecord", "span_id"): (10, 2),
    ("LogRecord", "observed_time_unix_nano"): (11, 1),
    ("LogRecord", "event_name"): (12, 2),
}

# Span.SpanKind values by the SDK's SpanKind (INTERNAL=0 ... CONSUMER=4): the proto's are one higher.
SPAN_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
# Span.flags / Span.Link.flags bits the SDK sets (SpanFlags enum).
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200


def _varint(n: int) -> bytes:
    """A non-negative integer as a protobuf varint."""
    if n < 0x80:
        return _BYTE[n]
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _tag(message: str, field: str) -> bytes:
    number, wire = FIELDS[(message, field)]
    return _varint(number << 3 | wire)


def _int64(n: int) -> bytes:
    """An int64 varint (two's complement, 10 bytes when negative); out of range raises like protobuf."""
    if 0 <= n < 0x80:
        return _BYTE[n]
    if n < 0:
        if n < _INT64_MIN:
            raise ValueError(f"Value out of range: {n}")
        n += _UINT64
    elif n > _INT64_MAX:
        raise ValueError(f"Value out of range: {n}")
    return _varint(n)


def _ld(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    n = len(payload)
    return tag + (_BYTE[n] if n < 0x80 else _varint(n)) + payload


# Tags, by message. The request, resource and scope levels of logs have the numbers of
# those of spans (FIELDS says so, the tests check FIELDS): one set of tags serves both.
_REQ_RESOURCE = _tag("ExportTraceServiceRequest", "resource_spans")
_RES_RESOURCE = _tag("ResourceSpans", "resource")
_RES_SCOPES = _tag("ResourceSpans", "scope_spans")
_RES_SCHEMA = _tag("ResourceSpans", "schema_url")
_SCOPE_SCOPE = _tag("ScopeSpans", "scope")
_SCOPE_ITEMS = _tag("ScopeSpans", "spans")
_SCOPE_SCHEMA = _tag("ScopeSpans", "schema_url")

_RESOURCE_ATTRS = _tag("Resource", "attributes")
_IS_NAME = _tag("InstrumentationScope", "name")
_IS_VERSION = _tag("InstrumentationScope", "version")
_IS_ATTRS = _tag("InstrumentationScope", "attributes")
_KV_KEY = _tag("KeyValue", "key")
_KV_VALUE = _tag("KeyValue", "value")
_AV_STRING = _tag("AnyValue", "string_value")
_AV_BOOL = _tag("AnyValue", "bool_value")
_AV_INT = _tag("AnyValue", "int_value")
_AV_DOUBLE = _tag("AnyValue", "double_value")
_AV_ARRAY = _tag("AnyValue", "array_value")
_AV_KVLIST = _tag("AnyValue", "kvlist_value")
_AV_BYTES = _tag("AnyValue", "bytes_value")
_AV_TRUE = _AV_BOOL + b"\x01"
_AV_FALSE = _AV_BOOL + b"\x00"
_ARRAY_VALUES = _tag("ArrayValue", "values")
_KVLIST_VALUES = _tag("KeyValueList", "values")

_SPAN_TRACE_ID = _tag("Span", "trace_id") + b"\x10"  # + 16 bytes
_SPAN_SPAN_ID = _tag("Span", "span_id") + b"\x08"  # + 8 bytes
_SPAN_TRACE_STATE = _tag("Span", "trace_state")
_SPAN_PARENT = _tag("Span", "parent_span_id") + b"\x08"
_SPAN_NAME = _tag("Span", "name")
_SPAN_KIND = _tag("Span", "kind")
_SPAN_START = _tag("Span", "start_time_unix_nano")
_SPAN_END = _tag("Span", "end_time_unix_nano")
_SPAN_ATTRS = _tag("Span", "attributes")
_SPAN_DROPPED_ATTRS = _tag("Span", "dropped_attributes_count")
_SPAN_EVENTS = _tag("Span", "events")
_SPAN_DROPPED_EVENTS = _tag("Span", "dropped_events_count")
_SPAN_LINKS = _tag("Span", "links")
_SPAN_DROPPED_LINKS = _tag("Span", "dropped_links_count")
_SPAN_STATUS = _tag("Span", "status")
_SPAN_FLAGS = _tag("Span", "flags")
_SPAN_FLAGS_LOCAL = _SPAN_FLAGS + _pack_fixed32(FLAG_HAS_IS_REMOTE)
_SPAN_FLAGS_REMOTE = _SPAN_FLAGS + _pack_fixed32(FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE)
_EVENT_TIME = _tag("Span.Event", "time_unix_nano")
_EVENT_NAME = _tag("Span.Event", "name")
_EVENT_ATTRS = _tag("Span.Event", "attributes")
_EVENT_DROPPED = _tag("Span.Event", "dropped_attributes_count")
_LINK_TRACE_ID = _tag("Span.Link", "trace_id") + b"\x10"
_LINK_SPAN_ID = _tag("Span.Link", "span_id") + b"\x08"
_LINK_ATTRS = _tag("Span.Link", "attributes")
_LINK_DROPPED = _tag("Span.Link", "dropped_attributes_count")
_LINK_FLAGS_LOCAL = _tag("Span.Link", "flags") + _pack_fixed32(FLAG_HAS_IS_REMOTE)
_LINK_FLAGS_REMOTE = _tag("Span.Link", "flags") + _pack_fixed32(FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE)
_STATUS_MESSAGE = _tag("Status", "message")
_STATUS_CODE = _tag("Status", "code")

_LOG_TIME = _tag("LogRecord", "time_unix_nano")
_LOG_SEVERITY_NUMBER = _tag("LogRecord", "severity_number")
_LOG_SEVERITY_TEXT = _tag("LogRecord", "severity_text")
_LOG_BODY = _tag("LogRecord", "body")
_LOG_ATTRS = _tag("LogRecord", "attributes")
_LOG_DROPPED = _tag("LogRecord", "dropped_attributes_count")
_LOG_FLAGS = _tag("LogRecord", "flags")
_LOG_TRACE_ID = _tag("LogRecord", "trace_id") + b"\x10"
_LOG_SPAN_ID = _tag("LogRecord", "span_id") + b"\x08"
_LOG_OBSERVED = _tag("LogRecord", "observed_time_unix_nano")
_LOG_EVENT_NAME = _tag("LogRecord", "event_name")

# ---------------------------------------------------------------- values

escaped_texts = 0  # how many texts were not valid Unicode and went out escaped (tests, doctor)


def _escaped(text: str) -> bytes:
    """UTF-8 of a text holding lone surrogates: each written as a backslash escape, reported once."""
    global escaped_texts
    escaped_texts += 1
    if escaped_texts == 1:
        logging.getLogger("otel_distro").warning(
            "otel-distro: a text to export was not valid Unicode (a lone surrogate, as os.fsdecode gives for "
            "a file name that is not UTF-8); it was sent with backslash escapes (\\udcff) and the rest of "
            "its item and batch as they were (reported once)")
    return str.encode(text, "utf-8", "backslashreplace")


def _utf8(text: str) -> bytes:
    try:
        return str.encode(text)
    except UnicodeEncodeError:
        return _escaped(text)



def any_value(value: Any) -> bytes:
    """The body of an AnyValue message, as the SDK's ``_encode_value`` builds it (same type order)."""
    # Exact types first (the common case), then the SDK's isinstance chain for subclasses.
    cls = type(value)
    if cls is str:
        try:
            b = value.encode()
        except UnicodeEncodeError:
            b = _escaped(value)
        n = len(b)
        return _AV_STRING + (_BYTE[n] if n < 0x80 else _varint(n)) + b
    if cls is int:
        return _AV_INT + _int64(value)
    if value is None:
        return b""
    if cls is bool:
        return _AV_TRUE if value else _AV_FALSE
    if cls is float:
        return _AV_DOUBLE + _pack_double(value)
    if isinstance(value, bool):
        return _AV_TRUE if value else _AV_FALSE
    if isinstance(value, str):
        return _ld(_AV_STRING, _utf8(value))
    if isinstance(value, int):
        return _AV_INT + _int64(value)
    if isinstance(value, float):
        return _AV_DOUBLE + _pack_double(value)
    if isinstance(value, bytes):
        return _ld(_AV_BYTES, bytes(value))
    if isinstance(value, Sequence):
        return _ld(_AV_ARRAY, b"".join([_ld(_ARRAY_VALUES, any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return _ld(_AV_KVLIST, b"".join([_ld(_KVLIST_VALUES, key_value(str(k), v)) for k, v in value.items()]))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


# key -> the KeyValue's key field (nothing for "") followed by the value field's tag:
# attribute keys repeat from item to item.
_key_cache: dict[str, bytes] = {}


def _key_head(key: str) -> bytes:
    hit = _key_cache.get(key)
    if hit is None:
        encoded = _utf8(key)  # a key that is not a str raises, as in protobuf
        hit = (_ld(_KV_KEY, encoded) if encoded else b"") + _KV_VALUE
        if type(key) is not str:  # a subclass may hash or compare differently: not cached
            return hit
        if len(_key_cache) >= 4096:
            _key_cache.clear()
        _key_cache[key] = hit
    return hit


def key_value(key: str, value: Any) -> bytes:
    """The body of a KeyValue message (the value is always present, empty for None)."""
    value_body = any_value(value)
    n = len(value_body)
    return _key_head(key) + (_BYTE[n] if n < 0x80 else _varint(n)) + value_body


# AnyValue length, string_value tag, string length: for strings of n < 126 bytes.
_SHORT_STRING = [_BYTE[n + 2] + _AV_STRING + _BYTE[n] for n in range(0x7E)]


def _attributes(out: list[bytes], tag: bytes, attributes: Mapping[str, Any]) -> None:
    """Append each attribute as a ``tag`` KeyValue field; one that cannot be encoded is left out."""
    keys = _key_cache
    short = _SHORT_STRING
    byte = _BYTE
    for key, value in attributes.items():
        try:
            head = keys.get(key) or _key_head(key)
            if type(value) is str:
                try:
                    b = value.encode()
                except UnicodeEncodeError:
                    b = _escaped(value)
                n = len(b)
                if n < 0x7E:
                    size = len(head) + n + 3
                    if size < 0x80:  # the usual attribute: no copying, one length byte each
                        out += (tag, byte[size], head, short[n], b)
                        continue
                    value_body = short[n][1:] + b
                else:
                    value_body = _AV_STRING + _varint(n) + b
            else:
                value_body = any_value(value)
        except Exception as error:  # as the SDK's _encode_attributes: that key is left out
            _sdk_log.exception("Failed to encode key %s: %s", key, error)
            continue
        n = len(value_body)
        size = len(head) + n + (1 if n < 0x80 else len(_varint(n)))
        out += (tag, byte[size] if size < 0x80 else _varint(size), head,
                byte[n] if n < 0x80 else _varint(n), value_body)


def _string_field(out: list[bytes], tag: bytes, text: str) -> None:
    b = _utf8(text)
    n = len(b)
    out.append(tag)
    out.append(_BYTE[n] if n < 0x80 else _varint(n))
    out.append(b)


# ---------------------------------------------------------------- encoder


class _Group:
    __slots__ = ("key", "prefix", "suffix")

    def __init__(self, prefix: bytes, suffix: bytes, key: Any) -> None:
        self.prefix = prefix  # the resource / scope field
        self.suffix = suffix  # the schema_url field
        self.key = key  # what the SDK would group by (its __eq__), as encoded content


class EncodedLogRecord:
    """A log record already encoded by :meth:`Encoder.encode_log_record`, waiting for its batch.

    Queued bytes instead of the SDK's record objects: less to build, and
    nothing for the garbage collector to trace while the record waits.
    """

    __slots__ = ("data", "instrumentation_scope", "resource")

    def __init__(self, resource: Any, instrumentation_scope: Any, data: bytes) -> None:
        self.resource = resource
        self.instrumentation_scope = instrumentation_scope
        self.data = data


_NO_SCOPE = _Group(_SCOPE_SCOPE + b"\x00", b"", None)
_UNSET = object()
_CACHE_SIZE = 64
_FIELD_CACHE_SIZE = 8192
_FIELD_MAX_LEN = 256


class Encoder:
    """Encodes batches of spans or log records into OTLP request bytes; one per exporter.

    ``redactor`` (an :class:`otel_distro.redaction.Redactor`, or None for no
    redaction) is applied as the copy-based wrappers apply it. Resources and
    scopes are encoded (and redacted) once and kept by identity across
    batches. Each batch's state is local to the call, the caches are plain
    dicts: a flush from another thread may export at the same time.
    """

    def __init__(self, redactor: Any = None) -> None:
        self.redactor = redactor
        self._resources: dict[int, tuple[Any, _Group]] = {}
        self._scopes: dict[int, tuple[Any, _Group]] = {}
        self._fields: dict[tuple[bytes, str, type, Any], bytes] = {}
        self._generation = 0 if redactor is None else redactor.generation

    def _keep_up_with_rules(self, redactor: Any) -> None:
        """Redacted fields and resources kept under rules since changed live are dropped."""
        if redactor is not None and redactor.generation != self._generation:
            self._fields, self._resources = {}, {}
            self._generation = redactor.generation

    # -- batches
    def encode_spans(self, spans: Sequence[Any]) -> bytes:
        """A serialized ExportTraceServiceRequest."""
        return self._request(spans, self._span)

    def encode_logs(self, batch: Sequence[Any]) -> bytes:
        """A serialized ExportLogsServiceRequest (of SDK records and :class:`EncodedLogRecord`)."""
        return self._request(batch, self._log_item)

    def _request(self, items: Sequence[Any], encode: Callable[[Any], bytes]) -> bytes:
        # resource key -> (resource, {scope key -> (scope, [item fields])}), in first-seen order
        # like the SDK's defaultdicts; the keys are per object, so consecutive items of the
        # same resource and scope (the usual case) skip the lookups.
        tree: dict[Any, tuple[_Group, dict[Any, tuple[_Group, list[bytes]]]]] = {}
        last_resource: Any = _UNSET
        last_scope: Any = _UNSET
        bucket: list[bytes] = []
        for item in items:
            resource = item.resource
            scope = item.instrumentation_scope or None
            if resource is not last_resource or scope is not last_scope:
                rgroup = self._resource(resource)
                sgroup = self._scope(scope)
                node = tree.get(rgroup.key)
                if node is None:
                    node = tree[rgroup.key] = (rgroup, {})
                leaf = node[1].get(sgroup.key)
                if leaf is None:
                    leaf = node[1][sgroup.key] = (sgroup, [])
                bucket = leaf[1]
                last_resource, last_scope = resource, scope
            bucket.append(encode(item))
        out: list[bytes] = []
        for rgroup, scopes in tree.values():
            parts = [rgroup.prefix]
            for sgroup, fields in scopes.values():
                fields.insert(0, sgroup.prefix)
                fields.append(sgroup.suffix)
                parts.append(_ld(_RES_SCOPES, b"".join(fields)))
            parts.append(rgroup.suffix)
            out.append(_ld(_REQ_RESOURCE, b"".join(parts)))
        return b"".join(out)

    # -- attributes
    def _attributes(self, out: list[bytes], tag: bytes, attributes: Mapping[str, Any]) -> None:
        """Append the redacted attributes as ``tag`` fields.

        Item after item the same pairs come back (method, route, status, scheme,
        logger name...): the encoded, redacted field of a string or int value is
        remembered by (tag, key, type, value) and copied.
        """
        redactor = self.redactor
        self._keep_up_with_rules(redactor)
        fields = self._fields
        for key, value in attributes.items():
            cls = type(value)
            cacheable = (cls is int or (cls is str and len(value) <= _FIELD_MAX_LEN)) and type(key) is str
            if cacheable:
                hit = fields.get((tag, key, cls, value))
                if hit is not None:
                    out.append(hit)
                    continue
            part: list[bytes] = []
            _attributes(part, tag, {redactor.key(key): redactor.value(key, value)} if redactor is not None
                        else {key: value})
            field = b"".join(part)
            out.append(field)
            if cacheable and field:
                if len(fields) >= _FIELD_CACHE_SIZE:
                    fields.clear()
                fields[(tag, key, cls, value)] = field

    # -- resources and scopes
    def _resource(self, resource: Any) -> _Group:
        self._keep_up_with_rules(self.redactor)
        hit = self._resources.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1]
        # with redaction: exactly the copy the wrappers export
        sent = resource if self.redactor is None else self.redactor.resource(resource)
        attributes = sent.attributes
        schema_url = sent.schema_url
        parts: list[bytes] = []
        if attributes:
            _attributes(parts, _RESOURCE_ATTRS, attributes)
        prefix = _ld(_RES_RESOURCE, b"".join(parts))
        suffix = _ld(_RES_SCHEMA, _utf8(schema_url)) if schema_url else b""
        group = _Group(prefix, suffix, (prefix, suffix))
        if len(self._resources) >= _CACHE_SIZE:
            self._resources.clear()
        self._resources[id(resource)] = (resource, group)
        return group

    def _scope(self, scope: Any) -> _Group:
        if scope is None:
            return _NO_SCOPE
        hit = self._scopes.get(id(scope))
        if hit is not None and hit[0] is scope:
            return hit[1]
        original = scope
        if self.redactor is not None:  # a logger's name is its scope's name
            scope = self.redactor.scope(scope)
        parts: list[bytes] = []
        if scope.name:
            _string_field(parts, _IS_NAME, scope.name)
        if scope.version:
            _string_field(parts, _IS_VERSION, scope.version)
        if scope.attributes:
            _attributes(parts, _IS_ATTRS, scope.attributes)
        body = b"".join(parts)
        schema_url = scope.schema_url
        suffix = _ld(_SCOPE_SCHEMA, _utf8(schema_url)) if schema_url else b""
        group = _Group(_ld(_SCOPE_SCOPE, body), suffix, (scope.name, scope.version, schema_url, body))
        if len(self._scopes) >= _CACHE_SIZE * 4:
            self._scopes.clear()
        self._scopes[id(original)] = (original, group)
        return group

    # -- spans
    def _span(self, span: Any) -> bytes:
        r = self.redactor
        context = span.get_span_context()
        out = [_SPAN_TRACE_ID, context.trace_id.to_bytes(16, "big"),
               _SPAN_SPAN_ID, context.span_id.to_bytes(8, "big")]
        trace_state = context.trace_state
        if trace_state:
            text = ",".join([f"{k}={v}" for k, v in trace_state.items()])
            if text:
                _string_field(out, _SPAN_TRACE_STATE, text)
        parent = span.parent
        if parent:
            out.append(_SPAN_PARENT)
            out.append(parent.span_id.to_bytes(8, "big"))
        name = span.name if r is None else r.name(span.name)
        if name:
            _string_field(out, _SPAN_NAME, name)
        out.append(_SPAN_KIND)
        out.append(_KINDS[span.kind])
        start = span.start_time
        if start:
            out.append(_SPAN_START)
            out.append(_pack_fixed64(start))
        end = span.end_time
        if end:
            out.append(_SPAN_END)
            out.append(_pack_fixed64(end))
        attributes = span.attributes
        if attributes:
            self._attributes(out, _SPAN_ATTRS, attributes)
        dropped = span.dropped_attributes
        if dropped:
            out.append(_SPAN_DROPPED_ATTRS)
            out.append(_varint(dropped))
        events = span.events
        if events:
            for event in events:
                out.append(self._event(event))
        dropped = span.dropped_events
        if dropped:
            out.append(_SPAN_DROPPED_EVENTS)
            out.append(_varint(dropped))
        links = span.links
        if links:
            for link in links:
                out.append(self._link(link))
        dropped = span.dropped_links
        if dropped:
            out.append(_SPAN_DROPPED_LINKS)
            out.append(_varint(dropped))
        status = span.status
        if status is not None:
            out.append(self._status(status))
        out.append(_SPAN_FLAGS_REMOTE if parent and parent.is_remote else _SPAN_FLAGS_LOCAL)
        return _ld(_SCOPE_ITEMS, b"".join(out))

    def _event(self, event: Any) -> bytes:
        out: list[bytes] = []
        timestamp = event.timestamp
        if timestamp:
            out.append(_EVENT_TIME)
            out.append(_pack_fixed64(timestamp))
        if event.name:
            _string_field(out, _EVENT_NAME, event.name if self.redactor is None else self.redactor.name(event.name))
        attributes = event.attributes
        if attributes:
            self._attributes(out, _EVENT_ATTRS, attributes)
        dropped = event.dropped_attributes
        if dropped:
            out.append(_EVENT_DROPPED)
            out.append(_varint(dropped))
        return _ld(_SPAN_EVENTS, b"".join(out))

    def _link(self, link: Any) -> bytes:
        context = link.context
        out = [_LINK_TRACE_ID, context.trace_id.to_bytes(16, "big"),
               _LINK_SPAN_ID, context.span_id.to_bytes(8, "big")]
        attributes = link.attributes
        if attributes:
            self._attributes(out, _LINK_ATTRS, attributes)
        dropped = link.dropped_attributes
        if dropped:
            out.append(_LINK_DROPPED)
            out.append(_varint(dropped))
        out.append(_LINK_FLAGS_REMOTE if context and context.is_remote else _LINK_FLAGS_LOCAL)
        return _ld(_SPAN_LINKS, b"".join(out))

    def _status(self, status: Any) -> bytes:
        out: list[bytes] = []
        message = status.description
        if message and self.redactor is not None:
            message = self.redactor.text(message)
        if message:
            _string_field(out, _STATUS_MESSAGE, message)
        code = status.status_code.value
        if code:
            out.append(_STATUS_CODE)
            out.append(_int64(code))
        return _ld(_SPAN_STATUS, b"".join(out))

    # -- log records
    def _log_item(self, item: Any) -> bytes:
        if type(item) is EncodedLogRecord:
            return item.data
        return self._log_record(item)

    def _log_record(self, readable: Any) -> bytes:
        record = readable.log_record
        return self._log_fields(
            record.timestamp, getattr(record.severity_number, "value", None), record.severity_text,
            record.body, record.attributes, readable.dropped_attributes, int(record.trace_flags),
            record.trace_id, record.span_id, record.observed_timestamp, record.event_name)

    def encode_log_record(self, resource: Any, scope: Any, timestamp: int | None, severity: int | None,
                          severity_text: str | None, body: Any, attributes: Mapping[str, Any] | None,
                          flags: int, trace_id: int, span_id: int, observed: int | None,
                          event_name: str | None) -> EncodedLogRecord:
        """One log record encoded (and redacted) ahead of its batch, for a batch processor's queue."""
        data = self._log_fields(timestamp, severity, severity_text, body, attributes, 0, flags, trace_id,
                                span_id, observed, event_name)
        return EncodedLogRecord(resource, scope, data)

    def _log_fields(self, timestamp: int | None, severity: int | None, severity_text: str | None, body: Any,
                    attributes: Mapping[str, Any] | None, dropped: int, flags: int, trace_id: int,
                    span_id: int, observed: int | None, event_name: str | None) -> bytes:
        r = self.redactor
        out: list[bytes] = []
        if timestamp:
            out.append(_LOG_TIME)
            out.append(_pack_fixed64(timestamp))
        if severity:
            out.append(_LOG_SEVERITY_NUMBER)
            out.append(_int64(severity))
        if severity_text:
            _string_field(out, _LOG_SEVERITY_TEXT, severity_text)
        if r is not None:
            body = r.any_value(body)
        out.append(_ld(_LOG_BODY, any_value(body)))  # always present, empty for None
        if attributes:
            self._attributes(out, _LOG_ATTRS, attributes)
        if dropped:
            out.append(_LOG_DROPPED)
            out.append(_varint(dropped))
        if flags:
            out.append(_LOG_FLAGS)
            out.append(_pack_fixed32(flags))
        if trace_id != 0:  # the SDK leaves an invalid (0) id out
            out.append(_LOG_TRACE_ID)
            out.append(trace_id.to_bytes(16, "big"))
        if span_id != 0:
            out.append(_LOG_SPAN_ID)
            out.append(span_id.to_bytes(8, "big"))
        if observed:
            out.append(_LOG_OBSERVED)
            out.append(_pack_fixed64(observed))
        if event_name:
            _string_field(out, _LOG_EVENT_NAME, event_name if r is None else r.name(event_name))
        return _ld(_SCOPE_ITEMS, b"".join(out))


def _span_kinds() -> dict[Any, bytes]:
    from opentelemetry.trace import SpanKind

    return {SpanKind[name]: _varint(value) for name, value in SPAN_KINDS.items()}


_KINDS = _span_kinds()
