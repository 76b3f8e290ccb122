"""What every LLM call costs, in USD, as OpenTelemetry metrics.

Two ways in:

* no code: GenAI spans of any instrumentation (opentelemetry-instrumentation-genai-openai ...)
  are priced when they end (see :mod:`otel_distro.ai.spans`);
* for what no instrumentation sees::

      from otel_distro import ai
      with ai.llm_call(provider="openai", model="gpt-4o", operation="chat") as call:
          reply = client.chat.completions.create(...)
          cost = call.record_usage(input_tokens=..., output_tokens=..., cache_read_tokens=...)

Metrics: ``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``
(semantic conventions), ``gen_ai.client.cost`` ({USD}, by token type and
``cost.source``), ``gen_ai.client.cache_savings`` and ``gen_ai.client.unpriced_calls``.
Prices come from genai-prices' bundled data (offline) and the override file
``OTEL_DISTRO_AI_PRICES_FILE``; a model with no price is never counted as $0.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from opentelemetry import baggage, metrics, trace
from opentelemetry import context as context_api
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_distro._internal_errors import report_internal_error
from otel_distro.ai import semconv
from otel_distro.ai.spans import IN_API_CALL, GenAISampler, GenAISpanProcessor

if TYPE_CHECKING:
    from otel_distro.ai.budgets import Budget, BudgetCrossed
    from otel_distro.ai.meters import GenAIMeters
    from otel_distro.ai.pricing import Cost, Override, Price

__all__ = ["LLMCall", "Price", "estimate_cost", "llm_call", "on_budget_crossed", "record_call"]

_log = logging.getLogger("otel_distro")

# Imported on first use: the price book and the meters (their modules cost ~2 ms
# at start-up) are needed by the first GenAI call, which many services never make.
_LAZY_NAMES = {"Cost": "pricing", "Price": "pricing", "PriceBook": "pricing", "compute_cost": "pricing",
               "load_overrides": "pricing", "GenAIMeters": "meters"}


def __getattr__(name: str) -> Any:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


class MetersOnFirstUse:
    """The GenAI meters, made when the first call is recorded.

    Until then nothing is created: no instruments, no price book, no pricing
    module (genai-prices' data is read at the first price lookup anyway).
    ``record`` and ``drain`` are those of :class:`~otel_distro.ai.meters.GenAIMeters`.
    """

    def __init__(self, make: Callable[[], GenAIMeters], cost_attributes: Sequence[str]) -> None:
        self._make = make
        self.cost_attributes = tuple(cost_attributes)
        self._made: GenAIMeters | None = None
        self._lock = threading.Lock()

    def get(self) -> GenAIMeters:
        made = self._made
        if made is None:
            with self._lock:
                if self._made is None:
                    self._made = self._make()
                made = self._made
        return made

    def record(self, *args: Any, **kwargs: Any) -> float | None:
        return self.get().record(*args, **kwargs)

    def record_agent_run(self, *args: Any) -> None:
        self.get().record_agent_run(*args)

    def record_tool_call(self, *args: Any) -> None:
        self.get().record_tool_call(*args)

    def drain(self) -> None:
        made = self._made
        if made is not None:
            made.drain()


def _meters_on_first_use(meter_provider: Any, chosen: Any, overrides: Sequence[Override],
                         follow_updates: bool = False) -> MetersOnFirstUse:
    budgets = _budgets(chosen)

    def make() -> GenAIMeters:
        from otel_distro.ai.budgets import BudgetBook
        from otel_distro.ai.meters import GenAIMeters
        from otel_distro.ai.pricing import PriceBook

        return GenAIMeters(meter_provider, PriceBook(overrides, follow_updates=follow_updates),
                           chosen.ai_cost_attributes, chosen.metric_attribute_value_limit,
                           BudgetBook(budgets, _budget_callbacks) if budgets else None)

    return MetersOnFirstUse(make, chosen.ai_cost_attributes)


class Runtime:
    """What :func:`install` set up: the span processor and a tracer; the meters on first use."""

    def __init__(self, meters: MetersOnFirstUse, processor: GenAISpanProcessor | None, tracer: trace.Tracer,
                 updater: Any = None) -> None:
        self._meters = meters
        self.processor = processor
        self.tracer = tracer
        self.updater = updater

    @property
    def meters(self) -> GenAIMeters:
        """The meters and their price book (``meters.prices``), made now if no call was recorded yet."""
        return self._meters.get()

    def close(self) -> None:
        if self.updater is not None:
            try:
                self.updater.stop()
            except Exception as err:
                report_internal_error("ai.prices_updater_stop", "stopping the genai-prices updater failed", err)
        self._meters.drain()


_lock = threading.Lock()
_runtime: Runtime | None = None


_budget_callbacks: list[Callable[[Any], Any]] = []


def on_budget_crossed(callback: Callable[[BudgetCrossed], Any]) -> None:
    """Call ``callback(BudgetCrossed)`` once per budget and period when this process's spend passes its limit.

    Budgets come from ``OTEL_DISTRO_AI_BUDGETS_FILE``; the callback runs on a thread of its own.
    """
    _budget_callbacks.append(callback)


def _budgets(chosen: Any) -> list[Budget]:
    """The budget file's entries, read now: its problems are reported at start-up."""
    if not chosen.ai_budgets_file:
        return []
    from otel_distro.ai.budgets import load

    return load(chosen.ai_budgets_file, chosen.ai_cost_attributes)


def _overrides(chosen: Any) -> list[Override]:
    """The price file's entries, read now: its problems are reported at start-up."""
    if not chosen.ai_prices_file:
        return []
    from otel_distro.ai.pricing import load_overrides

    return load_overrides(chosen.ai_prices_file)


def _default_runtime() -> Runtime:
    """Used when configure() did not run: the global providers, the settings' price file."""
    global _runtime
    with _lock:
        if _runtime is None:
            from otel_distro import settings

            chosen = settings.load(report=False)
            meters = _meters_on_first_use(metrics.get_meter_provider(), chosen, _overrides(chosen))
            _runtime = Runtime(meters, None, trace.get_tracer("otel_distro.ai"))
        return _runtime


def _current() -> Runtime:
    return _runtime or _default_runtime()


def install(chosen: Any, tracer_provider: Any, meter_provider: Any) -> Runtime | None:
    """Set up the GenAI meters on these providers (called by configure()).

    Wraps the tracer provider's sampler so that sampled-out GenAI spans are
    still counted, and adds the span processor (``OTEL_DISTRO_AI_SPAN_METRICS``).
    Call it before any tracer is taken from ``tracer_provider``. A failure is
    logged and leaves the rest of the telemetry running.
    """
    try:
        return _install(chosen, tracer_provider, meter_provider)
    except Exception as err:
        report_internal_error("ai.install", "GenAI metrics not set up", err)
        return None


def _install(chosen: Any, tracer_provider: Any, meter_provider: Any) -> Runtime:
    global _runtime
    from otel_distro._sdk_private import ending_span
    from otel_distro.ai import content

    content_policy = None
    if ending_span.rewrite.probe(ending_span._probe_rewrite):
        content_policy = content.ContentSpanProcessor(content.policy_from_settings(chosen))
    else:  # spans cannot be changed while they end: their exporters apply the policy to copies
        content.enforce_at_export(content.policy_from_settings(chosen))
    meters = _meters_on_first_use(meter_provider, chosen, _overrides(chosen),
                                  follow_updates=bool(chosen.ai_prices_update_url))
    processor = None
    if chosen.ai_span_metrics:
        ending_span.add_attributes.probe(ending_span._probe)
        # One processor for both: every span of the process passes it, and each processor costs every span.
        processor = GenAISpanProcessor(meters, meter_provider, content_policy)
        if not isinstance(tracer_provider.sampler, GenAISampler):
            tracer_provider.sampler = GenAISampler(tracer_provider.sampler)
        tracer_provider.add_span_processor(processor)
    elif content_policy is not None:
        tracer_provider.add_span_processor(content_policy)
    updater = _start_updates(chosen.ai_prices_update_url) if chosen.ai_prices_update_url else None
    runtime = Runtime(meters, processor, tracer_provider.get_tracer("otel_distro.ai"), updater)
    with _lock:
        previous, _runtime = _runtime, runtime
    if previous is not None:
        previous.close()
    return runtime


def _start_updates(url: str) -> Any:
    """genai-prices' background price updates, from the URL the user chose (never by default)."""
    try:
        from genai_prices import UpdatePrices

        updater = UpdatePrices(url=url)
        updater.start()
        return updater
    except Exception as err:
        _log.warning("otel-distro: OTEL_DISTRO_AI_PRICES_UPDATE_URL=%s: price updates not started: %s",
                     url, err)
        return None


def instrumented(name: str, chosen: Any) -> None:
    """Called by the distro after it ran the instrumentor of entry point ``name``."""
    if name == "openai" and chosen.ai_stream_usage:
        from otel_distro.ai import stream_usage

        stream_usage.install()


def instrumentor_options(name: str) -> dict[str, Any]:
    """Options the distro passes to a GenAI instrumentor."""
    if name == "openai_agents":
        # Otherwise the agents library also sends every trace to OpenAI's hosted tracing, unasked.
        return {"disable_openai_trace_export": True}
    return {}


def uninstall() -> None:
    """Flush queued calls and stop price updates (called by shutdown())."""
    global _runtime
    with _lock:
        runtime, _runtime = _runtime, None
    if runtime is not None:
        runtime.close()


def _baggage_values(keys: tuple[str, ...]) -> dict[str, str] | None:
    if not keys:
        return None
    found = {}
    for key in keys:
        value = baggage.get_baggage(key)
        if value is not None:
            found[key] = value
    return found or None


def record_call(provider: str, model: str, operation: str = "chat", *, duration_s: float | None = None,
                input_tokens: int | None = None, output_tokens: int | None = None,
                cache_read_tokens: int = 0, cache_write_tokens: int = 0,
                response_model: str | None = None, server_address: str | None = None,
                error_type: str | None = None,
                provider_cost: float | Mapping[str, float] | None = None) -> float | None:
    """Record one finished LLM call's metrics (no span); returns its cost in USD or None if unpriced.

    ``input_tokens`` includes cached tokens. ``provider_cost`` is the cost the
    provider's API reported (a total, or USD by token type); it is recorded
    with ``cost.source=provider`` instead of the local estimate.
    """
    try:
        meters = _current().meters
        return meters.record(provider, model, operation, duration_s=duration_s, input_tokens=input_tokens,
                             output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
                             cache_write_tokens=cache_write_tokens, response_model=response_model,
                             server_address=server_address, error_type=error_type,
                             provider_cost=provider_cost, extra=_baggage_values(meters.cost_attributes))
    except Exception as err:
        report_internal_error("ai.record_call", "recording an LLM call failed; the call is not counted", err)
        return None


def _span_cost(cost: float | None, from_provider: bool) -> dict[str, Any]:
    if cost is None:
        return {semconv.COST_UNPRICED_REASON: semconv.UNKNOWN_MODEL}
    return {semconv.USAGE_COST_AMOUNT: cost, semconv.USAGE_COST_CURRENCY: "USD",
            semconv.USAGE_COST_SOURCE: semconv.SOURCE_PROVIDER if from_provider else semconv.SOURCE_LOCAL}


def estimate_cost(provider: str, model: str, input_tokens: int, output_tokens: int,
                  cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> Cost | None:
    """What a call would cost (nothing recorded); None when the model has no price."""
    from otel_distro.ai.pricing import compute_cost

    price = _current().meters.prices.lookup(provider, model)
    if price is None:
        return None
    return compute_cost(price, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens)


class LLMCall:
    """One LLM call: times it, records tokens, cost and errors; see :func:`llm_call`."""

    def __init__(self, provider: str, model: str, operation: str = "chat", *,
                 server_address: str | None = None) -> None:
        self.provider = provider
        self.model = model
        self.operation = operation
        self.server_address = server_address
        self.cost: float | None = None
        self._response_model: str | None = None
        self._span: trace.Span | None = None
        self._own_span = False
        self._token: Any = None
        self._start = 0.0
        self._runtime: Runtime | None = None
        self._usage_recorded = False
        self._last_chunk: float | None = None
        self._first_chunk_s: float | None = None
        self._chunk_gaps: list[float] = []

    def __enter__(self) -> LLMCall:
        try:
            self._runtime = runtime = _current()
            ctx = context_api.set_value(IN_API_CALL, True)
            current = trace.get_current_span()
            attrs = getattr(current, "attributes", None)
            if current.is_recording() and attrs and semconv.OPERATION_NAME in attrs:
                self._span = current  # a GenAI span is already open for this call: annotate it
                if runtime.processor is not None:
                    runtime.processor.skip(current)
            else:
                start_attrs: dict[str, Any] = {semconv.OPERATION_NAME: self.operation,
                                               semconv.PROVIDER_NAME: self.provider,
                                               semconv.REQUEST_MODEL: self.model}
                if self.server_address:
                    start_attrs[semconv.SERVER_ADDRESS] = self.server_address
                self._span = runtime.tracer.start_span(f"{self.operation} {self.model}", context=ctx,
                                                       kind=SpanKind.CLIENT, attributes=start_attrs)
                self._own_span = True
                ctx = trace.set_span_in_context(self._span, ctx)
            self._token = context_api.attach(ctx)
        except Exception as err:
            report_internal_error("ai.llm_call_setup", "llm_call setup failed; the call has no span of its own", err)
        self._start = time.perf_counter()
        return self

    def record_usage(self, input_tokens: int = 0, output_tokens: int = 0, *, cache_read_tokens: int = 0,
                     cache_write_tokens: int = 0, response_model: str | None = None,
                     provider_cost: float | Mapping[str, float] | None = None) -> float | None:
        """Record the call's token usage; returns its cost in USD (None: no price for the model).

        ``input_tokens`` includes the cached ones, as in the semantic conventions.
        """
        self._response_model = response_model
        self._usage_recorded = True
        span = self._span
        if span is not None and span.is_recording():
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, input_tokens)
            span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, output_tokens)
            if cache_read_tokens:
                span.set_attribute(semconv.USAGE_CACHE_READ, cache_read_tokens)
            if cache_write_tokens:
                span.set_attribute(semconv.USAGE_CACHE_WRITE, cache_write_tokens)
            if response_model:
                span.set_attribute(semconv.RESPONSE_MODEL, response_model)
        try:
            meters = (self._runtime or _current()).meters
            self.cost = meters.record(
                self.provider, self.model, self.operation, input_tokens=input_tokens,
                output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens, response_model=response_model,
                server_address=self.server_address, provider_cost=provider_cost,
                extra=_baggage_values(meters.cost_attributes),
                span_context=span.get_span_context() if span is not None else None)
        except Exception as err:
            self.cost = None
            report_internal_error("ai.record_usage", "recording LLM usage failed; the call is not counted", err)
        if span is not None and span.is_recording():
            span.set_attributes(_span_cost(self.cost, provider_cost is not None))
        return self.cost

    def chunk_received(self) -> None:
        """Call once per chunk of a streamed response: time to first chunk and time per output chunk."""
        now = time.perf_counter()
        if self._last_chunk is None:
            self._first_chunk_s = now - self._start
        elif len(self._chunk_gaps) < 10_000:
            self._chunk_gaps.append(now - self._last_chunk)
        self._last_chunk = now

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        duration = time.perf_counter() - self._start
        error_type = exc_type.__qualname__ if exc_type is not None else None
        # A call that ended with no usage is counted unpriced, never as nothing.
        reason = None
        if not self._usage_recorded and error_type is None:
            reason = semconv.STREAM_WITHOUT_USAGE if self._first_chunk_s is not None else semconv.NO_USAGE
        try:
            meters = (self._runtime or _current()).meters
            meters.record(
                self.provider, self.model, self.operation, duration_s=duration,
                response_model=self._response_model, server_address=self.server_address,
                error_type=error_type, unpriced_reason=reason)
            if self._first_chunk_s is not None:
                meters.record_stream_timing(self.provider, self.model, self.operation, self._first_chunk_s,
                                            self._chunk_gaps)
            if reason is not None and self._span is not None and self._span.is_recording():
                self._span.set_attribute(semconv.COST_UNPRICED_REASON, reason)
        except Exception as err:
            report_internal_error("ai.llm_call_end", "recording an LLM call failed; the call is not counted", err)
        finally:
            if self._token is not None:
                context_api.detach(self._token)
            span = self._span
            if span is not None and exc is not None and span.is_recording():
                span.set_attribute(semconv.ERROR_TYPE, error_type or "_OTHER")
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
            if span is not None and self._own_span:
                span.end()


def llm_call(provider: str, model: str, operation: str = "chat", *,
             server_address: str | None = None) -> LLMCall:
    """A context manager around one LLM call (see :class:`LLMCall`).

    Creates a GenAI client span named ``{operation} {model}`` unless a GenAI
    span is already current; spans started inside (an instrumentation's) are
    not counted a second time.
    """
    return LLMCall(provider, model, operation, server_address=server_address)
