"""A FastAPI service whose telemetry shows which settings are in force: spans, log records and a GenAI call.

Started under opentelemetry-instrument by tests/test_config_file.py (settings from OTEL_CONFIG_FILE) and
tests/test_remote_config.py (settings changed live over OpAMP). GET /emit?tag=T makes, under the request's span,
ten child spans named "T-<i>" carrying a secret, one info and one warning log record saying T, and one GenAI chat
span with token usage (priced by the distro's GenAI processor) and its prompt (kept or not by the content policy),
and one value in each of two second-valued histograms created without advisory boundaries (config_app.work.duration,
config_app.queue.wait): whose bucket boundaries they get shows which views are in force.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from opentelemetry import metrics, trace

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("config_app")
tracer = trace.get_tracer("config_app")
meter = metrics.get_meter("config_app")
work_duration = meter.create_histogram("config_app.work.duration", unit="s")
queue_wait = meter.create_histogram("config_app.queue.wait", unit="s")
app = FastAPI()
SPANS_PER_EMIT = 10


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


@app.get("/emit")
async def emit(tag: str) -> dict:
    for i in range(SPANS_PER_EMIT):
        with tracer.start_as_current_span(f"{tag}-{i}") as span:
            span.set_attribute("password", "hunter2-" + tag)
            span.set_attribute("ssn", "078-05-1120")
    work_duration.record(0.2)
    queue_wait.record(0.3)
    log.info("info %s", tag)
    log.warning("warning %s password=hunter2", tag)
    # As instrumentations do: the operation, provider and model are known when the span starts.
    genai = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    with tracer.start_as_current_span(f"chat {tag}", attributes=genai) as span:
        span.set_attribute("gen_ai.usage.input_tokens", 1000)
        span.set_attribute("gen_ai.usage.output_tokens", 500)
        span.set_attribute("gen_ai.input.messages", '[{"role": "user", "content": "hello ' + tag + '"}]')
    return {"tag": tag}
