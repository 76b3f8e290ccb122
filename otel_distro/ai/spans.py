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
  histograms themselves** (opentelemetry-instrumentation-openai-v2 does): for a
  span whose instrumentation scope owns a ``gen_ai.client.token.usage``
  instrument, only cost, savings and unpriced calls are derived.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, StatusCode, TraceState
from opentelemetry.util.types import Attributes

from otel_distro.ai import semconv

if TYPE_CHECKING:
    from otel_distro.ai import MetersOnFirstUse
    from otel_distro.ai.meters import GenAIMeters

_log = logging.getLogger("otel_distro")

# Set in the context by llm_call(): spans started under it are the API's to count.
IN_API_CALL = context_api.create_key("otel_distro.ai.in_api_call")

_START_KEYS = (semconv.OPERATION_NAME, semconv.PROVIDER_NAME, semconv.SYSTEM)
# Scopes known to record gen_ai.client.token.usage themselves, when their meter cannot be inspected.
_KNOWN_METRIC_SCOPES = frozenset({"opentelemetry.instrumentation.openai_v2",
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


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class GenAISpanProcessor(SpanProcessor):
    """Derives tokens, duration, cost, savings and unpriced calls from ended GenAI spans."""

    def __init__(self, meters: GenAIMeters | MetersOnFirstUse, meter_provider: Any = None) -> None:
        self._meters = meters
        self._meter_provider = meter_provider
        self._cost_keys = meters.cost_attributes
        self._skip: set[int] = set()
        self._baggage: dict[int, dict[str, str]] = {}
        self._scope_records_metrics: dict[str, bool] = {}
        self._lock = threading.Lock()
        self._failed = False
        self._warned_currency: set[tuple[str, str]] = set()

    # ----------------------------------------------------------- per span

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        ctx = parent_context if parent_context is not None else context_api.get_current()
        if ctx.get(IN_API_CALL):
            self._remember(self._skip, span)
            return
        if self._cost_keys:
            found = {}
            for key in self._cost_keys:
                value = baggage.get_baggage(key, ctx)
                if value is not None:
                    found[key] = value
            if found:
                span_id = span.get_span_context().span_id
                with self._lock:
                    if len(self._baggage) > 50_000:  # spans that never end must not leak
                        self._baggage.clear()
                    self._baggage[span_id] = found

    def skip(self, span: Any) -> None:
        """Do not count this span: its call is recorded through the API."""
        self._remember(self._skip, span)

    def _remember(self, where: set[int], span: Any) -> None:
        with self._lock:
            if len(where) > 50_000:
                where.clear()
            where.add(span.get_span_context().span_id)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            span_id = span.context.span_id if span.context is not None else 0
            if self._skip and span_id in self._skip:
                with self._lock:
                    self._skip.discard(span_id)
                return
            extra = self._baggage.pop(span_id, None) if self._baggage else None
            attrs = span.attributes
            if not attrs:
                return
            operation = attrs.get(semconv.OPERATION_NAME)
            provider = _first(attrs, semconv.PROVIDER_NAME, semconv.SYSTEM)
            if provider is None or operation in semconv.NOT_INFERENCE:
                return
            self._record(span, attrs, str(provider), str(operation or "chat"), extra)
        except Exception as err:  # never break the host; say it once
            if not self._failed:
                self._failed = True
                _log.warning("otel-distro: deriving GenAI metrics from a span failed: %s: %s",
                             type(err).__name__, err)

    def _record(self, span: ReadableSpan, attrs: Mapping[str, Any], provider: str, operation: str,
                extra: dict[str, str] | None) -> None:
        model = attrs.get(semconv.REQUEST_MODEL) or attrs.get(semconv.RESPONSE_MODEL) or "unknown"
        input_tokens = _int(_first(attrs, semconv.USAGE_INPUT_TOKENS, semconv.USAGE_PROMPT_TOKENS))
        output_tokens = _int(_first(attrs, semconv.USAGE_OUTPUT_TOKENS, semconv.USAGE_COMPLETION_TOKENS))
        cache_read = _int(_first(attrs, semconv.USAGE_CACHE_READ, semconv.USAGE_CACHE_READ_FLAT)) or 0
        cache_write = _int(_first(attrs, semconv.USAGE_CACHE_WRITE, semconv.USAGE_CACHE_CREATION,
                                  semconv.USAGE_CACHE_CREATION_FLAT)) or 0
        duration = None
        if span.start_time is not None and span.end_time is not None:
            duration = max(span.end_time - span.start_time, 0) / 1e9
        error_type = attrs.get(semconv.ERROR_TYPE)
        if error_type is None and span.status is not None and span.status.status_code is StatusCode.ERROR:
            error_type = "_OTHER"
        scope = span.instrumentation_scope.name if span.instrumentation_scope is not None else ""
        provider_cost = self._provider_cost(attrs, provider, str(model))
        self._meters.record(
            provider, str(model), operation, duration_s=duration, input_tokens=input_tokens,
            output_tokens=output_tokens, cache_read_tokens=cache_read, cache_write_tokens=cache_write,
            response_model=attrs.get(semconv.RESPONSE_MODEL), server_address=attrs.get(semconv.SERVER_ADDRESS),
            server_port=_int(attrs.get(semconv.SERVER_PORT)), error_type=error_type and str(error_type),
            provider_cost=provider_cost, tokens_and_duration=not self._records_own_metrics(scope), extra=extra)

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
            key = (provider, model)
            if key not in self._warned_currency:
                self._warned_currency.add(key)
                _log.warning("otel-distro: %s/%s: provider-reported cost in %s ignored (gen_ai.client.cost "
                             "is in USD); the call is priced from the price list", provider, model, currency)
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
