"""AI cost and business meter overhead, measured in one run (ratios hold, absolute figures vary).

    .venv/bin/python bench/bench_ai.py

Prints a Markdown table for docs/ai-cost.md. Each figure is the median of
REPEATS runs of N operations, in microseconds per operation of the calling
thread's CPU time (time.thread_time): on a machine shared with other work,
wall-clock figures measure the neighbours.
"""

from __future__ import annotations

import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_distro import ai
from otel_distro.business import Registry
from otel_distro.settings import load

N = 20_000
REPEATS = 7


def per_op(fn: Callable[[], None], n: int = N, after: Callable[[], None] | None = None) -> float:
    runs = []
    for _ in range(REPEATS):
        start = time.thread_time()
        for _ in range(n):
            fn()
        runs.append((time.thread_time() - start) / n * 1e6)
        if after is not None:
            after()
    return statistics.median(runs)


class NullExporter(SpanExporter):
    def export(self, spans):  # type: ignore[no-untyped-def]
        return SpanExportResult.SUCCESS


def main() -> None:
    rows: list[tuple[str, float]] = []
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(NullExporter()))
    runtime = ai.install(load({}), tracer_provider, meter_provider)
    assert runtime is not None
    meters = runtime.meters

    def record() -> None:
        meters.record("openai", "gpt-4o", "chat", duration_s=0.8, input_tokens=1200, output_tokens=300,
                      response_model="gpt-4o-2024-08-06", server_address="api.openai.com")

    record()
    reader.get_metrics_data()
    batch = 2000

    # caller's cost: the queue is drained by the reader (outside the timed loop)
    rows.append(("record one LLM call (tokens in/out, duration, cost), caller thread",
                 per_op(record, batch, after=reader.get_metrics_data)))
    from otel_distro.ai.budgets import Budget, BudgetBook
    from otel_distro.ai.meters import GenAIMeters

    budgeted = GenAIMeters(meter_provider, meters.prices, ("tenant",), budgets=BudgetBook([
        Budget("acme", "day", 1e9, (("tenant", "acme"),)),
        Budget("gpt", "month", 1e9, (("gen_ai.request.model", "gpt-*"),)),
        Budget("globex", "day", 1e9, (("tenant", "globex"),))]))
    tenant = {"tenant": "acme"}

    def record_budgeted() -> None:
        budgeted.record("openai", "gpt-4o", "chat", duration_s=0.8, input_tokens=1200, output_tokens=300,
                        response_model="gpt-4o-2024-08-06", server_address="api.openai.com", extra=tenant)

    rows.append(("  the same with three budgets configured (one matching two)",
                 per_op(record_budgeted, batch, after=reader.get_metrics_data)))
    # what the reader's collection pays per queued call
    drains = []
    for _ in range(REPEATS):
        for _ in range(batch):
            record()
        start = time.thread_time()
        meters.drain()
        drains.append((time.thread_time() - start) / batch * 1e6)
    rows.append(("  the same call fed to the SDK instruments at collection (reader thread)",
                 statistics.median(drains)))

    sdk_meter = meter_provider.get_meter("bench.sdk")
    tokens = sdk_meter.create_histogram("bench.tokens", unit="{token}")
    duration = sdk_meter.create_histogram("bench.duration", unit="s")
    cost = sdk_meter.create_counter("bench.cost", unit="{USD}")
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
              "gen_ai.response.model": "gpt-4o-2024-08-06", "server.address": "api.openai.com"}
    inp, out = {**common, "gen_ai.token.type": "input"}, {**common, "gen_ai.token.type": "output"}

    def direct() -> None:
        duration.record(0.8, common)
        tokens.record(1200, inp)
        tokens.record(300, out)
        cost.add(0.003, inp)
        cost.add(0.003, out)

    rows.append(("  the same five measurements straight into the SDK instruments", per_op(direct, batch)))

    from genai_prices import Usage, calc_price

    usage = Usage(input_tokens=1200, output_tokens=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(("genai-prices calc_price for the same usage (not on our path: prices are cached)",
                     per_op(lambda: calc_price(usage, "gpt-4o", provider_id="openai"), 2000)))

    def api_call() -> None:
        with ai.llm_call("openai", "gpt-4o") as call:
            call.record_usage(1200, 300)

    rows.append(("llm_call(...) + record_usage(...), with its client span (batch processor)",
                 per_op(api_call, batch, after=reader.get_metrics_data)))

    plain = TracerProvider()
    plain.add_span_processor(BatchSpanProcessor(NullExporter()))
    plain_tracer = plain.get_tracer("bench")
    genai_tracer = tracer_provider.get_tracer("bench")

    def span_plain() -> None:
        with plain_tracer.start_as_current_span("GET /items"):
            pass

    def span_with_genai_processor() -> None:
        with genai_tracer.start_as_current_span("GET /items"):
            pass

    usage_attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                   "gen_ai.request.model": "gpt-4o"}

    def span_genai() -> None:
        with genai_tracer.start_as_current_span("chat gpt-4o", attributes=usage_attrs) as span:
            span.set_attribute("gen_ai.usage.input_tokens", 1200)
            span.set_attribute("gen_ai.usage.output_tokens", 300)

    rows.append(("an instrumentation's GenAI client span, priced when it ends (cost on the span, metrics queued)",
                 per_op(span_genai, batch, after=reader.get_metrics_data)))
    rows.append(("a non-GenAI span, start+end, batch processor", per_op(span_plain)))
    rows.append(("  the same with the GenAI sampler wrapper, span and content processors",
                 per_op(span_with_genai_processor)))

    # business counters
    registry = Registry(meter_provider)
    campaigns = registry.counter("campaigns.created", "{campaign}", attributes=["platform", "plan", "region"])
    sdk_counter = sdk_meter.create_counter("bench.campaigns")
    attrs = {"platform": "meta", "plan": "pro", "region": "eu"}

    rows.append(("business counter add, 3 attributes (keywords)",
                 per_op(lambda: campaigns.add(1, platform="meta", plan="pro", region="eu"), 200_000)))
    rows.append(("business counter add, 3 attributes (a dict)",
                 per_op(lambda: campaigns.add(1, attrs), 200_000)))
    rows.append(("SDK Counter.add, 3 attributes", per_op(lambda: sdk_counter.add(1, attrs), 50_000)))
    try:
        from prometheus_client import CollectorRegistry
        from prometheus_client import Counter as PromCounter

        prom = PromCounter("campaigns_created", "c", ["platform", "plan", "region"], registry=CollectorRegistry())
        child = prom.labels("meta", "pro", "eu")
        rows.append(("prometheus_client labels(...).inc()",
                     per_op(lambda: prom.labels(platform="meta", plan="pro", region="eu").inc(), 200_000)))
        rows.append(("prometheus_client bound child .inc()", per_op(child.inc, 200_000)))
    except ImportError:
        pass
    ai.uninstall()

    import opentelemetry.sdk.version as sdk_version

    print(f"Python {sys.version.split()[0]}, opentelemetry-sdk {sdk_version.__version__}; "
          f"median of {REPEATS} runs, µs of caller-thread CPU per operation\n")
    print("| operation | µs |")
    print("| --- | ---: |")
    for name, value in rows:
        print(f"| {name} | {value:.2f} |")


if __name__ == "__main__":
    main()
