"""The GenAI meters: tokens, duration, cost, cache savings, unpriced calls.

Recording a call costs a price lookup, a few multiplications and one
``deque.append``: the SDK instruments (about 5 µs per measurement with SDK
1.45, eight measurements per call) are fed later, when a metric reader
collects, from the callback of an observable instrument that reports nothing
itself. The SDK runs every callback before it reads the synchronous
instruments' storage, so each collection includes every call recorded before
it. When nothing collects (no reader), the queue is drained in the caller
once it holds ``_MAX_PENDING`` calls, so memory stays bounded.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import NonRecordingSpan, SpanContext

from otel_distro._internal_errors import report_internal_error
from otel_distro.ai import semconv
from otel_distro.ai.budgets import BudgetBook
from otel_distro.ai.pricing import Cost, PriceBook, compute_cost
from otel_distro.version import __version__

_MAX_PENDING = 4096
_TYPES = (semconv.INPUT, semconv.OUTPUT, semconv.CACHE_READ, semconv.CACHE_WRITE)


class BoundedAttributes:
    """Keeps at most ``limit`` distinct values per attribute key; later ones become ``other``."""

    OTHER = "other"

    def __init__(self, keys: Sequence[str], limit: int) -> None:
        self.keys = tuple(keys)
        self.limit = limit
        self._seen: dict[str, set[Any]] = {k: set() for k in self.keys}
        self._lock = threading.Lock()

    def bound(self, key: str, value: Any) -> Any:
        seen = self._seen[key]
        if value in seen:
            return value
        with self._lock:
            if value in seen:
                return value
            if len(seen) >= self.limit:
                return self.OTHER
            seen.add(value)
            return value


def _histogram_maker(meter: Any) -> Callable[[str, str, str, Sequence[float]], Any]:
    def histogram(name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
        return meter.create_histogram(name, unit=unit, description=description,
                                      explicit_bucket_boundaries_advisory=list(buckets))
    return histogram


class GenAIMeters:
    """Records LLM calls on one MeterProvider, priced by one PriceBook."""

    def __init__(self, meter_provider: MeterProvider, prices: PriceBook,
                 cost_attributes: Sequence[str] = (), value_limit: int = 100,
                 budgets: BudgetBook | None = None) -> None:
        self.prices = prices
        self._budgets = budgets if budgets is not None and budgets.budgets else None
        self.cost_attributes = tuple(cost_attributes)
        self._bounded = BoundedAttributes(self.cost_attributes, value_limit)
        self._agent_names = BoundedAttributes((semconv.AGENT_NAME,), value_limit)
        self._tool_names = BoundedAttributes((semconv.TOOL_NAME,), value_limit)
        meter = meter_provider.get_meter("otel_distro.ai", __version__)
        histogram, counter = _histogram_maker(meter), meter.create_counter
        self._tokens = histogram(semconv.TOKEN_USAGE, "{token}", "Number of input and output tokens used",
                                 semconv.TOKEN_BUCKETS)
        self._duration = histogram(semconv.OPERATION_DURATION, "s", "GenAI operation duration",
                                   semconv.DURATION_BUCKETS)
        self._cost = counter(semconv.COST, unit="{USD}", description="Estimated cost of GenAI calls in US dollars")
        self._savings = counter(semconv.CACHE_SAVINGS, unit="{USD}",
                                description="What cache reads saved against the uncached input price, in US dollars")
        self._unpriced = counter(
            semconv.UNPRICED_CALLS, unit="{call}",
            description="GenAI calls with no cost: model with no known price, or no usage reported (reason)")
        self._ttfc = histogram(semconv.TIME_TO_FIRST_CHUNK, "s", "Time to the first chunk of a streamed response",
                               semconv.DURATION_BUCKETS)
        self._per_chunk = histogram(semconv.TIME_PER_OUTPUT_CHUNK, "s",
                                    "Time between output chunks of a streamed response", semconv.DURATION_BUCKETS)
        self._agent_runs = histogram(semconv.AGENT_RUN_DURATION, "s",
                                     "Agent runs (invoke_agent spans): duration, outcome",
                                     semconv.AGENT_DURATION_BUCKETS)
        self._agent_tokens = counter(semconv.AGENT_TOKEN_USAGE, unit="{token}",
                                     description="Tokens of the model calls made by agent runs")
        self._tool_calls = histogram(semconv.TOOL_CALL_DURATION, "s",
                                     "Tool calls (execute_tool spans): duration, outcome",
                                     semconv.AGENT_DURATION_BUCKETS)
        if self._budgets is not None:
            meter.create_observable_counter(semconv.BUDGET_SPEND, callbacks=[self._budget_spend], unit="{USD}",
                                            description="USD spent on each budget since the process started")
            meter.create_observable_gauge(semconv.BUDGET_LIMIT, callbacks=[self._budget_limits], unit="{USD}",
                                          description="Each budget's limit per period, in US dollars")
        # Reports nothing: its callback feeds the queued calls to the instruments above.
        meter.create_observable_gauge("otel_distro.ai.pending", callbacks=[self._drain_callback],
                                      unit="{call}", description="Internal: flushes queued GenAI calls")
        self._pending: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._drain_lock = threading.Lock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._pending.clear)

    # ------------------------------------------------------------ recording

    def record(self, provider: str, model: str, operation: str = "chat", *,
               duration_s: float | None = None, input_tokens: int | None = None,
               output_tokens: int | None = None, cache_read_tokens: int = 0, cache_write_tokens: int = 0,
               response_model: str | None = None, server_address: str | None = None,
               server_port: int | None = None, error_type: str | None = None,
               provider_cost: float | Mapping[str, float] | None = None, tokens_and_duration: bool = True,
               extra: Mapping[str, Any] | None = None, span_context: SpanContext | None = None,
               agent: str | None = None, unpriced_reason: str | None = None) -> float | None:
        """Record one call; returns its cost in USD (None when its model has no price).

        ``tokens_and_duration=False`` records cost only (the instrumentation that
        made the span records the semconv histograms itself). ``extra`` holds
        candidate cost attributes (baggage); only the configured keys are kept.
        ``span_context`` (the call's span) becomes the exemplar of its cost and tokens; ``agent`` the
        ``gen_ai.agent.name`` of its cost; ``unpriced_reason`` why a call with no usage has no cost.
        """
        cost: Cost | None = None
        total: float | None = None
        # A provider-reported cost counts even when the call reported no tokens.
        has_usage = input_tokens is not None or output_tokens is not None or provider_cost is not None
        if has_usage:
            inp, out = input_tokens or 0, output_tokens or 0
            price = self.prices.lookup(provider, model)
            if price is not None:
                cost = compute_cost(price, inp, out, cache_read_tokens, cache_write_tokens)
                total = cost.total
            if provider_cost is not None:
                total = self._provider_total(provider_cost)
            if total is not None and self._budgets is not None:
                self._budgets.add(total, {**(extra or {}), semconv.PROVIDER_NAME: provider,
                                          semconv.REQUEST_MODEL: model, semconv.AGENT_NAME: agent})
        self._queue(self._emit, (provider, model, operation, duration_s, input_tokens, output_tokens,
                                 response_model, server_address, server_port, error_type, cost,
                                 provider_cost, has_usage, tokens_and_duration, extra, span_context, agent,
                                 unpriced_reason))
        return total

    def record_stream_timing(self, provider: str, model: str, operation: str, first_chunk_s: float,
                             chunk_gaps_s: Sequence[float]) -> None:
        """Time to first chunk and the gaps between later chunks of one streamed call."""
        self._queue(self._emit_stream, (provider, model, operation, first_chunk_s, tuple(chunk_gaps_s)))

    def record_agent_run(self, agent: str, duration_s: float | None, error_type: str | None,
                         input_tokens: int, output_tokens: int) -> None:
        self._queue(self._emit_agent, (agent, duration_s, error_type, input_tokens, output_tokens))

    def record_tool_call(self, tool: str, duration_s: float | None, error_type: str | None) -> None:
        self._queue(self._emit_tool, (tool, duration_s, error_type))

    def _queue(self, emit: Callable[..., None], args: tuple[Any, ...]) -> None:
        self._pending.append((emit, args))
        if len(self._pending) > _MAX_PENDING:
            self.drain()

    def _budget_spend(self, _options: CallbackOptions) -> Iterable[Observation]:
        assert self._budgets is not None
        return [Observation(spent, {semconv.BUDGET: b.name, semconv.BUDGET_PERIOD: b.period})
                for b, spent in self._budgets.spend()]

    def _budget_limits(self, _options: CallbackOptions) -> Iterable[Observation]:
        assert self._budgets is not None
        return [Observation(b.limit_usd, {semconv.BUDGET: b.name, semconv.BUDGET_PERIOD: b.period})
                for b in self._budgets.budgets]

    @staticmethod
    def _provider_total(provider_cost: float | Mapping[str, float]) -> float:
        if isinstance(provider_cost, Mapping):
            return float(sum(provider_cost.values()))
        return float(provider_cost)

    # ------------------------------------------------------------- draining

    def _drain_callback(self, _options: CallbackOptions) -> Iterable[Observation]:
        self.drain()
        return ()

    def drain(self) -> None:
        """Feed every queued call to the SDK instruments (done at each collection)."""
        pending = self._pending
        with self._drain_lock:
            while pending:
                try:
                    emit, args = pending.popleft()
                except IndexError:
                    return
                try:
                    emit(*args)
                except Exception as err:  # never break the host
                    report_internal_error("ai.meters_emit", "recording a GenAI call failed; the call is not counted",
                                          err)

    def _emit(self, provider: str, model: str, operation: str, duration_s: float | None,
              input_tokens: int | None, output_tokens: int | None, response_model: str | None,
              server_address: str | None, server_port: int | None, error_type: str | None,
              cost: Cost | None, provider_cost: float | Mapping[str, float] | None, has_usage: bool,
              tokens_and_duration: bool, extra: Mapping[str, Any] | None, span_context: SpanContext | None,
              agent: str | None, unpriced_reason: str | None) -> None:
        ctx = None
        if span_context is not None and span_context.is_valid:
            ctx = trace.set_span_in_context(NonRecordingSpan(span_context))
        if tokens_and_duration:
            common: dict[str, Any] = {semconv.OPERATION_NAME: operation, semconv.PROVIDER_NAME: provider,
                                      semconv.REQUEST_MODEL: model}
            if response_model:
                common[semconv.RESPONSE_MODEL] = response_model
            if server_address:
                common[semconv.SERVER_ADDRESS] = server_address
            if server_port:
                common[semconv.SERVER_PORT] = server_port
            if duration_s is not None:
                if error_type:
                    self._duration.record(duration_s, {**common, semconv.ERROR_TYPE: error_type}, ctx)
                else:
                    self._duration.record(duration_s, common, ctx)
            if input_tokens is not None:
                self._tokens.record(input_tokens, {**common, semconv.TOKEN_TYPE: semconv.INPUT}, ctx)
            if output_tokens is not None:
                self._tokens.record(output_tokens, {**common, semconv.TOKEN_TYPE: semconv.OUTPUT}, ctx)
        if not has_usage:
            if unpriced_reason is not None:
                self._unpriced.add(1, {semconv.PROVIDER_NAME: provider, semconv.REQUEST_MODEL: model,
                                       semconv.UNPRICED_REASON: unpriced_reason})
            return
        base: dict[str, Any] = {semconv.PROVIDER_NAME: provider, semconv.REQUEST_MODEL: model,
                                semconv.OPERATION_NAME: operation}
        if extra and self.cost_attributes:
            for key in self.cost_attributes:
                value = extra.get(key)
                if value is not None:
                    base[key] = self._bounded.bound(key, value)
        if agent is not None:
            base[semconv.AGENT_NAME] = self._agent_names.bound(semconv.AGENT_NAME, agent)
        if provider_cost is not None:
            self._add_costs(self._split(provider_cost, cost, input_tokens or 0, output_tokens or 0),
                            base, semconv.SOURCE_PROVIDER, ctx)
        elif cost is not None:
            self._add_costs((cost.input, cost.output, cost.cache_read, cost.cache_write),
                            base, semconv.SOURCE_LOCAL, ctx)
        else:
            self._unpriced.add(1, {semconv.PROVIDER_NAME: provider, semconv.REQUEST_MODEL: model,
                                   semconv.UNPRICED_REASON: semconv.UNKNOWN_MODEL})
        if cost is not None and cost.savings > 0:
            self._savings.add(cost.savings, base)

    def _add_costs(self, parts: Sequence[float], base: dict[str, Any], source: str, ctx: Any) -> None:
        for token_type, value in zip(_TYPES, parts, strict=True):
            if value > 0 or (value == 0 and token_type in (semconv.INPUT, semconv.OUTPUT)):
                self._cost.add(value, {**base, semconv.TOKEN_TYPE: token_type, semconv.COST_SOURCE: source}, ctx)

    def _emit_stream(self, provider: str, model: str, operation: str, first_chunk_s: float,
                     chunk_gaps_s: tuple[float, ...]) -> None:
        common = {semconv.OPERATION_NAME: operation, semconv.PROVIDER_NAME: provider, semconv.REQUEST_MODEL: model}
        self._ttfc.record(first_chunk_s, common)
        for gap in chunk_gaps_s:
            self._per_chunk.record(gap, common)

    def _emit_agent(self, agent: str, duration_s: float | None, error_type: str | None,
                    input_tokens: int, output_tokens: int) -> None:
        name = {semconv.AGENT_NAME: self._agent_names.bound(semconv.AGENT_NAME, agent)}
        if duration_s is not None:
            self._agent_runs.record(duration_s, {**name, semconv.ERROR_TYPE: error_type} if error_type else name)
        if input_tokens:
            self._agent_tokens.add(input_tokens, {**name, semconv.TOKEN_TYPE: semconv.INPUT})
        if output_tokens:
            self._agent_tokens.add(output_tokens, {**name, semconv.TOKEN_TYPE: semconv.OUTPUT})

    def _emit_tool(self, tool: str, duration_s: float | None, error_type: str | None) -> None:
        if duration_s is None:
            return
        name = {semconv.TOOL_NAME: self._tool_names.bound(semconv.TOOL_NAME, tool)}
        self._tool_calls.record(duration_s, {**name, semconv.ERROR_TYPE: error_type} if error_type else name)

    @staticmethod
    def _split(provider_cost: float | Mapping[str, float], cost: Cost | None,
               input_tokens: int, output_tokens: int) -> tuple[float, float, float, float]:
        """A provider-reported cost by token type: as given, or a total split like the local price."""
        if isinstance(provider_cost, Mapping):
            return tuple(float(provider_cost.get(t, 0.0)) for t in _TYPES)  # type: ignore[return-value]
        total = float(provider_cost)
        if cost is not None and cost.total > 0:
            parts = (cost.input, cost.output, cost.cache_read, cost.cache_write)
            return tuple(total * p / cost.total for p in parts)  # type: ignore[return-value]
        tokens = input_tokens + output_tokens
        if tokens <= 0:
            return (total, 0.0, 0.0, 0.0)
        return (total * input_tokens / tokens, total * output_tokens / tokens, 0.0, 0.0)
