"""GenAI metrics derived from spans, so instrumentations get cost with no code.

Any span carrying GenAI semantic-convention attributes (current or previous
names) is turned into one recorded call when it ends. Three rules keep the
numbers right:

* **Sampled-out calls still count.** A dropped span is never started, so no
  processor sees it. :class:`GenAISampler` wraps the configured sampler and
  turns a *drop* into *record only* for spans that announce a GenAI operation
  in their start attributes (``gen_ai.operation.name``, ``gen_ai.provider.name``
  or ``gen_ai.system``; every GenAI instrumentation sets them at start). Such a
  span records and ends, this processor sees it, and the exporters skip it
  because its sampled flag is off. Its children are still dropped.
* **No double counting with the API.** Spans started inside
  :func:`otel_distro.ai.llm_call` (its own, and the instrumentation's within
  it) are skipped: the API records the call itself.
* **No double counting with instrumentations that record the semconv
  histograms themselves** (the opentelemetry-instrumentation-genai-* family
  does): for a span whose instrumentation scope owns a ``gen_ai.client.token.usage``
  instrument (or that sits inside such a span), only cost, savings and unpriced
  calls are derived.
* **Nested spans of one call count once** (an instrumentation's span around
  the anthropic client's own span): the innermost span reporting usage is
  counted; the others only carry its cost.

Every counted call's span gets its cost (``gen_ai.usage.cost.*``) or the reason
it has none, written while the span ends (the ``_on_ending`` hook, before any
exporter sees it); the local root span and every ``invoke_agent`` span get the
summed cost of the calls under them. ``invoke_agent`` and ``execute_tool``
spans become agent-run and tool-call metrics.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceState
from opentelemetry.util.types import Attributes

from otel_distro._internal_errors import OnceWarnings, report_internal_error
from otel_distro._sdk_private import ending_span, span_attributes
from otel_distro.ai import semconv

if TYPE_CHECKING:
    from otel_distro.ai import MetersOnFirstUse
    from otel_distro.ai.content import ContentSpanProcessor
    from otel_distro.ai.meters import GenAIMeters

_log = logging.getLogger("otel_distro")

# Set in the context by llm_call(): spans started under it are the API's to count.
IN_API_CALL = context_api.create_key("otel_distro.ai.in_api_call")

_START_KEYS = _OPERATION, _PROVIDER, _SYSTEM = (semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.SYSTEM)
# Scopes known to record gen_ai.client.token.usage themselves, when their meter cannot be inspected.
_KNOWN_METRIC_SCOPES = frozenset({"opentelemetry.instrumentation.openai_v2",
                                  "opentelemetry.instrumentation.genai.openai",
                                  "opentelemetry.instrumentation.genai.anthropic",
                                  "opentelemetry.util.genai.handler"})


class GenAISampler(Sampler):
    """The configured sampler, except that dropped GenAI spans are recorded (not exported)."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        result = self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links,
                                             trace_state)
        if result.decision is Decision.DROP and attributes:
            for key in _START_KEYS:
                if key in attributes:
                    return SamplingResult(Decision.RECORD_ONLY, attributes, result.trace_state)
        return result

    def get_description(self) -> str:
        return f"GenAIRecordOnly{{{self.delegate.get_description()}}}"


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = attrs.get(key)
        if value is not None:
            return value
    return None


def _usage(attrs: Mapping[str, Any]) -> tuple[int | None, int | None, int, int]:
    """Input (cached included), output, cache-read and cache-write tokens, current or previous names."""
    return (_int(_first(attrs, semconv.USAGE_INPUT_TOKENS, semconv.USAGE_PROMPT_TOKENS)),
            _int(_first(attrs, semconv.USAGE_OUTPUT_TOKENS, semconv.USAGE_COMPLETION_TOKENS)),
            _int(_first(attrs, semconv.USAGE_CACHE_READ, semconv.USAGE_CACHE_READ_FLAT)) or 0,
            _int(_first(attrs, semconv.USAGE_CACHE_WRITE, semconv.USAGE_CACHE_CREATION,
                        semconv.USAGE_CACHE_CREATION_FLAT)) or 0)


def _duration(span: ReadableSpan) -> float | None:
    if span.start_time is None or span.end_time is None:
        return None
    return max(span.end_time - span.start_time, 0) / 1e9


def _error_type(span: ReadableSpan, attrs: Mapping[str, Any]) -> str | None:
    error_type = attrs.get(semconv.ERROR_TYPE)
    if error_type is None and span.status is not None and span.status.status_code is StatusCode.ERROR:
        return "_OTHER"
    return None if error_type is None else str(error_type)


def _cost_attributes(cost: float | None, reason: str | None, source: str) -> dict[str, Any]:
    """A call's cost as span attributes: the proposed gen_ai.usage.cost.*, or why it has none."""
    if cost is None:
        return {semconv.COST_UNPRICED_REASON: reason or semconv.UNKNOWN_MODEL}
    return {semconv.USAGE_COST_AMOUNT: cost, semconv.USAGE_COST_CURRENCY: "USD", semconv.USAGE_COST_SOURCE: source}


def _sums(entry: _Open) -> dict[str, Any]:
    return {semconv.COST_TOTAL: entry.cost, semconv.CALLS_TOTAL: entry.calls,
            semconv.UNPRICED_TOTAL: entry.unpriced}


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _Open:
    """What the processor keeps about one recording span of this process until it ends.

    It never refers to itself (a root is its own root, an agent run its own agent: None is kept for both), so
    that an ended span's record and the span go as soon as they are dropped, not at the next garbage collection.
    """

    __slots__ = ("_outer_agent", "_root", "calls", "cost", "covered", "extra", "inference", "input_tokens",
                 "is_agent", "output_tokens", "own_metrics", "parent", "skip", "span", "span_id", "unpriced")

    def __init__(self, span: Any, span_id: int, parent: _Open | None, inference: bool, is_agent: bool,
                 skip: bool) -> None:
        self.span = span
        self.span_id = span_id
        self.parent = parent
        self._root: _Open | None = parent.root if parent is not None else None
        self._outer_agent: _Open | None = parent.agent if parent is not None else None
        self.is_agent = is_agent
        self.inference = inference
        self.skip = skip
        self.covered: float | bool | None = False  # an inner span counted this call (its cost, None: unpriced)
        self.own_metrics = False
        self.extra: dict[str, str] | None = None
        self.cost = 0.0
        self.calls = self.unpriced = self.input_tokens = self.output_tokens = 0

    @property
    def root(self) -> _Open:
        """The local root span's record."""
        return self._root if self._root is not None else self

    @property
    def agent(self) -> _Open | None:
        """The record of the nearest agent run: this span's, or the one around it."""
        return self if self.is_agent else self._outer_agent

    def inference_ancestors(self) -> Iterator[_Open]:
        entry = self.parent
        while entry is not None:
            if entry.inference:
                yield entry
            entry = entry.parent

    def cost_owners(self) -> Iterator[_Open]:
        """The spans that carry the summed cost of this call: every enclosing agent run, and the local root."""
        agent = self._outer_agent
        while agent is not None:
            yield agent
            agent = agent._outer_agent
        if self._root is not None and not self._root.is_agent:
            yield self._root


class GenAISpanProcessor(SpanProcessor):
    """Prices ended GenAI spans (metrics and span attributes), sums cost onto root and agent spans.

    Nested inference spans (an instrumentation's span around a client library's own, as the anthropic SDK
    emits) are one call: the innermost span that reports usage is counted, the spans around it only carry
    its cost; a call none of whose spans report usage is counted once, as unpriced, by the outermost.
    """

    # Its work on a span is done in _on_ending (or, for SDKs without it, metrics only): on_end may come late.
    late_on_end_ok = True

    def __init__(self, meters: GenAIMeters | MetersOnFirstUse, meter_provider: Any = None,
                 content: ContentSpanProcessor | None = None) -> None:
        self._meters = meters
        self._content = content  # the content policy, applied to GenAI spans before they are priced
        self._meter_provider = meter_provider
        self._cost_keys = meters.cost_attributes
        self._open: dict[int, _Open] = {}
        self._scope_records_metrics: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._other_currency = OnceWarnings(_log)
        self._ending_seen = False

    # ----------------------------------------------------------- per span

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        # Every span of the process comes here: an ordinary one costs a look at three names and a dict entry.
        try:
            attrs = span_attributes.READ(span)
            if _OPERATION in attrs or _PROVIDER in attrs or _SYSTEM in attrs:
                self._start_call(span, parent_context, span.attributes)
                return
            span_id = span.context.span_id
            entry = self._parent_entry(span)
            if entry is None:  # a local root (or a parent started before this processor): a record of its own
                self._keep(span_id, _Open(span, span_id, None, False, False, False))
            else:  # it shares its parent's record: root, agent and call
                self._open[span_id] = entry
        except Exception as err:
            report_internal_error("ai.span_start", "a span was not followed for GenAI cost", err)

    def _parent_entry(self, span: Span) -> _Open | None:
        parent = span.parent
        return None if parent is None or parent.is_remote else self._open.get(parent.span_id)

    def _start_call(self, span: Span, parent_context: Context | None, attrs: Mapping[str, Any]) -> None:
        ctx = parent_context if parent_context is not None else context_api.get_current()
        operation = attrs.get(semconv.OPERATION_NAME)
        span_id = span.context.span_id
        entry = _Open(span, span_id, self._parent_entry(span), operation not in semconv.NOT_INFERENCE,
                      operation == "invoke_agent", bool(ctx.get(IN_API_CALL)))
        scope = span.instrumentation_scope
        entry.own_metrics = self._records_own_metrics(scope.name if scope is not None else "")
        if self._cost_keys:
            found = {}
            for key in self._cost_keys:
                value = baggage.get_baggage(key, ctx)
                if value is not None:
                    found[key] = value
            entry.extra = found or None
        self._keep(span_id, entry)

    def _keep(self, span_id: int, entry: _Open) -> None:
        if len(self._open) > 50_000:  # spans that never end must not leak
            self._open.clear()
        self._open[span_id] = entry

    def skip(self, span: Any) -> None:
        """Do not count this span: its call is recorded through the API."""
        entry = self._open.get(span.get_span_context().span_id)
        if entry is not None:
            entry.skip = True

    def _on_ending(self, span: Span) -> None:
        # Runs (SDK >= 1.44) before any processor's on_end: the span's own attributes can still be completed.
        self._ending_seen = True
        self._end(span, writable=True)

    def on_end(self, span: ReadableSpan) -> None:
        if not self._ending_seen:  # an SDK without the ending hook: the metrics only
            self._end(span, writable=False)

    def _end(self, span: ReadableSpan, writable: bool) -> None:
        try:
            context = span.context
            span_id = context.span_id if context is not None else 0
            attrs = span_attributes.READ(span)
            named = _OPERATION in attrs or _PROVIDER in attrs or _SYSTEM in attrs
            if named and writable and self._content is not None:
                self._content.apply(span)
            entry = self._open.pop(span_id, None)
            if entry is not None and (named or (entry.span_id == span_id and (
                    entry.inference or entry.calls or entry.is_agent))):
                self._finish(span, span_id, entry, writable)
            # else: no GenAI call, and no sums to write
        except Exception as err:  # never break the host; say it once
            report_internal_error("ai.span_end", "deriving GenAI metrics from a span failed", err)

    def _finish(self, span: ReadableSpan, span_id: int, entry: _Open, writable: bool) -> None:
        attrs = span.attributes or {}
        operation = attrs.get(semconv.OPERATION_NAME)
        if entry.span_id != span_id:  # an ordinary span sharing its parent's record, unless it said late
            if not _announced_late(attrs, operation):
                return
            entry = _Open(span, span_id, entry, False, False, False)
            self._follow_late(span, entry)
        elif not entry.inference and not entry.skip and _announced_late(attrs, operation):
            self._follow_late(span, entry)
        written: dict[str, Any] = {}
        if entry.inference and entry.skip:
            self._account_api_call(entry, attrs)
        elif entry.inference:
            written = self._finish_call(span, entry, attrs, str(operation or "chat"))
        elif operation == "invoke_agent":
            self._meters.record_agent_run(str(attrs.get(semconv.AGENT_NAME) or "unknown"),
                                          _duration(span), _error_type(span, attrs),
                                          entry.input_tokens, entry.output_tokens)
        elif operation == "execute_tool":
            self._meters.record_tool_call(str(attrs.get(semconv.TOOL_NAME) or "unknown"),
                                          _duration(span), _error_type(span, attrs))
        if (entry.calls and entry.root is entry) or entry.is_agent:
            written.update(_sums(entry))
        if written and writable:
            ending_span.add_attributes(span, written)

    def _follow_late(self, span: ReadableSpan, entry: _Open) -> None:
        """A span that said it is a GenAI call only after it started (hand-made spans often do) is priced too."""
        entry.inference = True
        scope = span.instrumentation_scope
        entry.own_metrics = self._records_own_metrics(scope.name if scope is not None else "")

    def _account_api_call(self, entry: _Open, attrs: Mapping[str, Any]) -> None:
        """A call llm_call() recorded: only its cost (set on the span by the API) goes to the sums."""
        amount = attrs.get(semconv.USAGE_COST_AMOUNT)
        if isinstance(amount, int | float) and not isinstance(amount, bool):
            self._add_to_owners(entry, float(amount), 0, 0)
        elif semconv.COST_UNPRICED_REASON in attrs:
            self._add_to_owners(entry, None, 0, 0)

    def _finish_call(self, span: ReadableSpan, entry: _Open, attrs: Mapping[str, Any],
                     operation: str) -> dict[str, Any]:
        provider = str(_first(attrs, semconv.PROVIDER_NAME, semconv.SYSTEM) or "unknown")
        if entry.covered is not False:  # an inner span of the same call was counted
            return _cost_attributes(entry.covered, None, semconv.SOURCE_LOCAL)
        usage = _usage(attrs)
        has_usage = usage[0] is not None or usage[1] is not None
        nested = next(entry.inference_ancestors(), None) is not None
        if not has_usage and nested and _error_type(span, attrs) is None:
            return {}  # the span around this one may report the usage: it counts the call
        model = str(attrs.get(semconv.REQUEST_MODEL) or attrs.get(semconv.RESPONSE_MODEL) or "unknown")
        provider_cost = self._provider_cost(attrs, provider, model)
        error_type = _error_type(span, attrs)
        reason = None
        if not has_usage and provider_cost is None and error_type is None:
            reason = semconv.STREAM_WITHOUT_USAGE if attrs.get(semconv.REQUEST_STREAM) else semconv.NO_USAGE
        own_metrics = entry.own_metrics or any(a.own_metrics for a in entry.inference_ancestors())
        agent = entry.agent.span.attributes.get(semconv.AGENT_NAME) if entry.agent is not None else None
        cost = self._meters.record(
            provider, model, operation, duration_s=_duration(span), input_tokens=usage[0],
            output_tokens=usage[1], cache_read_tokens=usage[2], cache_write_tokens=usage[3],
            response_model=attrs.get(semconv.RESPONSE_MODEL), server_address=attrs.get(semconv.SERVER_ADDRESS),
            server_port=_int(attrs.get(semconv.SERVER_PORT)), error_type=error_type and str(error_type),
            provider_cost=provider_cost, tokens_and_duration=not own_metrics, extra=entry.extra,
            span_context=span.context, agent=agent and str(agent), unpriced_reason=reason)
        if error_type is not None and not has_usage:
            return {}
        for ancestor in entry.inference_ancestors():
            ancestor.covered = cost
        self._add_to_owners(entry, cost, usage[0] or 0, usage[1] or 0)
        if cost is None:
            return {semconv.COST_UNPRICED_REASON: reason or semconv.UNKNOWN_MODEL}
        if provider_cost is not None:
            return {}  # the span carries the provider's figure already
        return _cost_attributes(cost, reason, semconv.SOURCE_LOCAL)

    def _add_to_owners(self, entry: _Open, cost: float | None, input_tokens: int, output_tokens: int) -> None:
        with self._lock:
            for owner in entry.cost_owners():
                owner.calls += 1
                owner.input_tokens += input_tokens
                owner.output_tokens += output_tokens
                if cost is None:
                    owner.unpriced += 1
                else:
                    owner.cost += cost
                if owner.span.is_recording():
                    owner.span.set_attributes(_sums(owner))

    def _provider_cost(self, attrs: Mapping[str, Any], provider: str, model: str) -> float | None:
        """A cost the provider reported (``gen_ai.usage.cost.*``, source provider, in USD), or None.

        A ``local`` amount (another component's own estimate) is ignored: the
        distro prices the call itself. Another currency is ignored with one
        warning per (provider, model): the metric is in USD and rates are not ours to pick.
        """
        amount = attrs.get(semconv.USAGE_COST_AMOUNT)
        if amount is None or attrs.get(semconv.USAGE_COST_SOURCE) != semconv.SOURCE_PROVIDER:
            return None
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount) \
                or amount < 0:
            return None
        currency = attrs.get(semconv.USAGE_COST_CURRENCY)
        if currency is not None and str(currency).upper() != "USD":
            self._other_currency.warn((provider, model), "otel-distro: %s/%s: provider-reported cost in %s ignored "
                                      "(gen_ai.client.cost is in USD); the call is priced from the price list",
                                      provider, model, currency)
            return None
        return float(amount)

    # ------------------------------------------------ double-count guard

    def _records_own_metrics(self, scope: str) -> bool:
        known = self._scope_records_metrics.get(scope)
        if known is None:
            known = self._inspect(scope)
            self._scope_records_metrics[scope] = known
        return known

    def _inspect(self, scope: str) -> bool:
        """Whether the meter of this instrumentation scope created gen_ai.client.token.usage."""
        meters = getattr(self._meter_provider, "_meters", None)
        if not isinstance(meters, Mapping):
            return scope in _KNOWN_METRIC_SCOPES
        prefix = semconv.TOKEN_USAGE + ","
        for instrumentation_scope, meter in list(meters.items()):
            if getattr(instrumentation_scope, "name", None) != scope:
                continue
            instruments = getattr(meter, "_instrument_id_instrument", {})
            if any(str(key).startswith(prefix) for key in list(instruments)):
                return True
        return scope in _KNOWN_METRIC_SCOPES

    def shutdown(self) -> None:
        self._meters.drain()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _announced_late(attrs: Mapping[str, Any], operation: Any) -> bool:
    """Whether a span's final attributes name a GenAI inference call its start attributes did not announce."""
    provider = semconv.PROVIDER_NAME in attrs or semconv.SYSTEM in attrs
    return provider and operation not in semconv.NOT_INFERENCE
