"""Seam: the request's SERVER span started without the SDK's per-attribute re-checks.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1. ``Tracer.start_span`` cleans every attribute value again (type
checks, a copy of the mapping) and builds a lock-guarded container per span. The middleware's own attributes are
plain strings and ints, known to be clean: :func:`start` builds an SDK span exactly as ``start_span`` does - same
sampler, ids, trace flags, processors, limits, resource and scope - but hands those attributes over as they are,
and :func:`add_attributes` adds the ones known at the end the same way. The always-on decision of the SDK's own
samplers is taken without calling them, the event and link lists are made on first use, and the finished copy
handed to the processors holds plain containers (see ``_ServerSpan._readable_span``).

Private parts relied on: the fields ``Span.__init__`` sets (probed once: :func:`sdk_matches`),
``BoundedAttributes._dict``, the tracer's ``_span_limits``, ``_instrumentation_scope``, ``_tracer_metrics``,
``_is_enabled``, and the SDK samplers' ``_root``/``_*_parent_*``/``_decision``. Both run behind a
:class:`~otel_distro._sdk_private.FastPath`: on any exception the call is answered by ``tracer.start_span`` /
``span.set_attributes`` and the fast path is off for the rest of the process.
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, Tracer
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, StaticSampler
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from otel_distro._sdk_private import FastPath, span_end_batches
from otel_distro.ai.spans import GenAISampler
from otel_distro.sdk_limits import kept_as_is

_SDK_SPAN_FIELDS = frozenset((
    "_name", "_context", "_kind", "_instrumentation_info", "_instrumentation_scope", "_parent",
    "_start_time", "_end_time", "_attributes", "_events", "_links", "_resource", "_status",
    "_sampler", "_trace_config", "_record_exception", "_set_status_on_exception", "_span_processor",
    "_limits", "_lock", "_record_end_metrics"))
_TRACER_FIELDS = ("sampler", "resource", "span_processor", "id_generator", "instrumentation_info",
                  "_span_limits", "_instrumentation_scope", "_tracer_metrics", "_is_enabled")


def _made_on_first_use(slot: str, limit: str) -> property:
    """A span's list, kept under ``slot`` and made (bounded by ``limit``) when first read."""

    def get(span: Any) -> Any:
        found = span.__dict__.get(slot)
        if found is None:  # setdefault: a reader and a writer making it at once share one
            found = span.__dict__.setdefault(slot, BoundedList(getattr(span._limits, limit)))
        return found

    def put(span: Any, value: Any) -> None:
        if value:
            span.__dict__[slot] = value
        else:
            span.__dict__.pop(slot, None)

    return property(get, put)


class _ServerSpan(SdkSpan):
    """An SDK span built by :func:`start` (its ``__init__`` is never called).

    Its event and link lists are made on first use: most server spans have none.
    """

    _events = _made_on_first_use("_event_list", "max_events")
    _links = _made_on_first_use("_link_list", "max_links")

    def _readable_span(self) -> ReadableSpan:
        # The finished span waits in the batch queue long enough to reach the
        # collector's oldest generation, where every object it holds makes full
        # collections come sooner. The SDK's copy holds the attribute container and
        # both lists with their locks and deques; this one holds the plain dict (ints
        # and strings: not tracked by the collector) and empty tuples when nothing
        # was added or dropped - what the exporters read is the same.
        attributes = self._attributes
        events, links = self.__dict__.get("_event_list"), self.__dict__.get("_link_list")
        return ReadableSpan(
            name=self._name, context=self._context, parent=self._parent, resource=self._resource,
            attributes=attributes if attributes.dropped else attributes._dict,
            events=events if events is not None and (events or events.dropped) else (),
            links=links if links is not None and (links or links.dropped) else (),
            kind=self._kind, status=self._status, start_time=self._start_time, end_time=self._end_time,
            instrumentation_info=self._instrumentation_info,
            instrumentation_scope=self._instrumentation_scope)


class _Probe(SdkSpan):
    """Only to read which fields this SDK's Span.__init__ sets."""


def sdk_matches() -> bool:
    """Whether this SDK's ``Span`` sets exactly the fields :func:`start` sets, attributes in a plain dict."""
    probe = _Probe(name="probe", context=trace.INVALID_SPAN_CONTEXT)
    return set(vars(probe)) == _SDK_SPAN_FIELDS and isinstance(getattr(probe._attributes, "_dict", None), dict)


def tracer_is_lean(tracer: Any) -> bool:
    """Whether ``tracer`` is the SDK's, with what :func:`start` reads from it."""
    return isinstance(tracer, Tracer) and all(hasattr(tracer, name) for name in _TRACER_FIELDS)


_SAMPLED = Decision.RECORD_AND_SAMPLE


def _always_samples(sampler: Any, parent: SpanContext | None) -> bool:
    """Whether ``sampler`` is the SDK's always-on for this parent: result known without asking.

    Only the SDK's own classes, exactly (a subclass may decide otherwise); the
    GenAI wrapper changes only what its delegate drops.
    """
    if type(sampler) is GenAISampler:
        sampler = sampler.delegate
    if type(sampler) is ParentBased:
        if parent is None:
            sampler = sampler._root
        elif parent.is_remote:
            sampler = sampler._remote_parent_sampled if parent.trace_flags.sampled \
                else sampler._remote_parent_not_sampled
        else:
            sampler = sampler._local_parent_sampled if parent.trace_flags.sampled \
                else sampler._local_parent_not_sampled
    return type(sampler) is StaticSampler and sampler._decision is _SAMPLED


_FLAGS: dict[int, TraceFlags] = {}


def _trace_flags(flags: int) -> TraceFlags:
    """One shared TraceFlags per value: each would be another tracked object per queued span."""
    shared = _FLAGS.get(flags)
    if shared is None:
        shared = _FLAGS.setdefault(flags, TraceFlags(flags))
    return shared


def start_public(tracer: Any, name: str, context: Any, attributes: dict[str, Any]) -> Any:
    return tracer.start_span(name, context=context, kind=SpanKind.SERVER, attributes=attributes)


def _start_lean(tracer: Any, name: str, context: Any, attributes: dict[str, Any]) -> Any:
    if not tracer._is_enabled():
        return start_public(tracer, name, context, attributes)
    parent = trace.get_current_span(context).get_span_context()
    if parent is None or not parent.is_valid:
        parent = None
        trace_id = tracer.id_generator.generate_trace_id()
        random_trace_id = tracer.id_generator.is_trace_id_random()
    else:
        trace_id = parent.trace_id
        random_trace_id = parent.trace_flags.random_trace_id
    if _always_samples(tracer.sampler, parent):
        # what the sampler would return, without its context lookups and result object
        decision, given, trace_state = _SAMPLED, attributes, parent.trace_state if parent else None
    else:
        result = tracer.sampler.should_sample(context, trace_id, name, SpanKind.SERVER, attributes, ())
        decision, given, trace_state = result.decision, result.attributes, result.trace_state
    flags = TraceFlags.SAMPLED if decision.is_sampled() else TraceFlags.DEFAULT
    if random_trace_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    span_context = SpanContext(trace_id, tracer.id_generator.generate_span_id(), is_remote=False,
                               trace_flags=_trace_flags(flags), trace_state=trace_state)
    if not decision.is_recording():
        tracer._tracer_metrics.start_span(parent, decision)
        return NonRecordingSpan(context=span_context)
    span = _server_span(tracer, name, span_context, parent, given)
    # Counted last: a failure above leaves nothing for the public path to count twice.
    span._record_end_metrics = tracer._tracer_metrics.start_span(parent, decision)
    span.start(parent_context=context)
    return span


def _server_span(tracer: Any, name: str, span_context: SpanContext, parent: SpanContext | None,
                 given: Any) -> _ServerSpan:
    """The span's fields, set as ``Span.__init__`` sets them."""
    limits = tracer._span_limits
    span = _ServerSpan.__new__(_ServerSpan)
    ReadableSpan.__init__(span, name=name, context=span_context, parent=parent, kind=SpanKind.SERVER,
                          resource=tracer.resource, instrumentation_info=tracer.instrumentation_info,
                          instrumentation_scope=tracer._instrumentation_scope)
    span._sampler = tracer.sampler
    span._trace_config = None
    span._record_exception = True
    span._set_status_on_exception = True
    span._span_processor = span_end_batches.processor_for(tracer.span_processor)  # on_end in batches
    span._limits = limits
    span._lock = threading.Lock()
    if kept_as_is(given, limits.max_span_attributes, limits.max_span_attribute_length):
        span._attributes = BoundedAttributes(limits.max_span_attributes, None, immutable=False,
                                             max_value_len=limits.max_span_attribute_length)
        span._attributes._dict.update(given)
    else:
        span._attributes = BoundedAttributes(limits.max_span_attributes, given, immutable=False,
                                             max_value_len=limits.max_span_attribute_length)
    return span


def add_attributes_public(span: Any, attributes: dict[str, Any]) -> None:
    span.set_attributes(attributes)


def _add_attributes_lean(span: Any, attributes: dict[str, Any]) -> None:
    if type(span) is _ServerSpan:
        limits = span._limits
        with span._lock:
            if span._end_time is None and kept_as_is(
                    attributes, limits.max_span_attributes, limits.max_span_attribute_length,
                    already=len(span._attributes._dict)):
                span._attributes._dict.update(attributes)
                return
    span.set_attributes(attributes)


def new_guards() -> tuple[FastPath[Any], FastPath[None]]:
    """The (start, add_attributes) guards, probed against this SDK."""
    start = FastPath("server_span.start", _start_lean, start_public)
    add = FastPath("server_span.add_attributes", _add_attributes_lean, add_attributes_public)
    start.probe(sdk_matches)  # off: no _ServerSpan is made, and ADD_ATTRIBUTES passes every span on
    return start, add


START, ADD_ATTRIBUTES = new_guards()
