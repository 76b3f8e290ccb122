"""A stand-in service that emits the distro's metric names on a Prometheus pull endpoint.

Run as a process: ``python emitter.py PORT``. It serves /metrics on 127.0.0.1:PORT
through opentelemetry-sdk + PrometheusMetricReader (the same path as the distro's
Prometheus reader), prints ``ready`` and generates steady, alert-free traffic every
0.2 s. Commands on stdin switch fault modes:

  unhealthy / healthy          health.check.status{health_check_name="database"} 0 / 1
  unpriced on / unpriced off   count gen_ai.client.unpriced_calls every tick
  quit                         exit

Errors (HTTP 5xx, LLM errors, Celery failures/retries) are recorded once at start-up
so their series exist for the dashboards without pushing error ratios over thresholds.
Until the distro is ready this stands in for the example service (see docs/collector.md).
"""

from __future__ import annotations

import sys
import threading
import time

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import start_http_server

from otel_distro import process_metrics

SECONDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
TOKENS = [1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864]
GENAI_SECONDS = [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92]


def main() -> None:
    port = int(sys.argv[1])
    service = sys.argv[2] if len(sys.argv) > 2 else "shop"
    reader = PrometheusMetricReader()
    views = [
        View(instrument_name="http.server.request.duration", aggregation=ExplicitBucketHistogramAggregation(SECONDS)),
        View(instrument_name="celery.task.duration", aggregation=ExplicitBucketHistogramAggregation(SECONDS)),
        View(instrument_name="health.check.duration", aggregation=ExplicitBucketHistogramAggregation(SECONDS)),
        View(instrument_name="gen_ai.client.token.usage", aggregation=ExplicitBucketHistogramAggregation(TOKENS)),
        View(instrument_name="gen_ai.client.operation.duration",
             aggregation=ExplicitBucketHistogramAggregation(GENAI_SECONDS)),
        View(instrument_name="shop.cart.value", aggregation=ExplicitBucketHistogramAggregation([5, 10, 25, 50, 100, 250])),
    ]
    provider = MeterProvider(metric_readers=[reader], views=views,
                             resource=Resource.create({"service.name": service}))
    process_metrics.start(provider)  # the distro's process metrics, as a service exports them
    meter = provider.get_meter("otel_distro.tests.emitter")

    http = meter.create_histogram("http.server.request.duration", unit="s")
    task_duration = meter.create_histogram("celery.task.duration", unit="s")
    task_runs = meter.create_counter("celery.task.runs", unit="{run}")
    tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    llm_duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    cost = meter.create_counter("gen_ai.client.cost", unit="{USD}")
    savings = meter.create_counter("gen_ai.client.cache_savings", unit="{USD}")
    unpriced = meter.create_counter("gen_ai.client.unpriced_calls", unit="{call}")
    health = meter.create_gauge("health.check.status")
    health_duration = meter.create_histogram("health.check.duration", unit="s")
    orders = meter.create_counter("shop.orders.created", unit="{order}")
    cart = meter.create_histogram("shop.cart.value", unit="{USD}")

    llm = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
           "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
           "server.address": "api.openai.com"}
    state = {"healthy": True, "unpriced": False, "stop": False}

    def http_request(route: str, status: int, seconds: float) -> None:
        attrs = {"http.request.method": "GET" if route != "/orders" else "POST", "http.route": route,
                 "http.response.status_code": status, "url.scheme": "http"}
        if status >= 500:
            attrs["error.type"] = str(status)
        http.record(seconds, attrs)

    # one-off failures so error series exist
    http_request("/checkout", 500, 0.2)
    http_request("/checkout", 503, 0.3)
    llm_duration.record(1.5, {**llm, "error.type": "timeout"})
    for outcome in ("failure", "retry"):
        task_runs.add(1, {"celery.task.name": "send_email", "celery.task.outcome": outcome})
        task_duration.record(0.4, {"celery.task.name": "send_email", "celery.task.outcome": outcome})
    unpriced.add(0, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})

    start_http_server(port, addr="127.0.0.1")
    print("ready", flush=True)

    def traffic() -> None:
        n = 0
        while not state["stop"]:
            n += 1
            for i in range(20):
                http_request("/products", 200, 0.02 + (i % 5) * 0.01)
                http_request("/cart", 200 if i % 4 else 404, 0.05)
            http_request("/orders", 201, 0.3)
            orders.add(1, {"channel": "web" if n % 3 else "mobile"})
            cart.record(20 + n % 60, {"channel": "web"})
            task_runs.add(1, {"celery.task.name": "send_email", "celery.task.outcome": "success"})
            task_duration.record(0.5, {"celery.task.name": "send_email", "celery.task.outcome": "success"})
            llm_duration.record(0.8, llm)
            tokens.record(1200, {**llm, "gen_ai.token.type": "input"})
            tokens.record(300, {**llm, "gen_ai.token.type": "output"})
            base = {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.operation.name": "chat", "cost_source": "local"}
            cost.add(0.003, {**base, "gen_ai.token.type": "input"})
            cost.add(0.003, {**base, "gen_ai.token.type": "output"})
            cost.add(0.0005, {**base, "gen_ai.token.type": "cache_read"})
            savings.add(0.001, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})
            if state["unpriced"]:
                unpriced.add(1, {"gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"})
            health.set(1 if state["healthy"] else 0, {"health.check.name": "database"})
            health.set(1, {"health.check.name": "cache"})
            health_duration.record(0.004, {"health.check.name": "database"})
            time.sleep(0.2)

    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    for line in sys.stdin:
        command = line.strip()
        if command == "unhealthy":
            state["healthy"] = False
        elif command == "healthy":
            state["healthy"] = True
        elif command == "unpriced on":
            state["unpriced"] = True
        elif command == "unpriced off":
            state["unpriced"] = False
        elif command == "quit":
            break
        print(f"ok {command}", flush=True)
    state["stop"] = True
    worker.join(timeout=2)


if __name__ == "__main__":
    main()
