"""A FastAPI service that puts whatever it is sent into logs, extras, spans, events, exceptions and names.

Started under opentelemetry-instrument by tests/test_redaction_service.py, which
posts thousands of generated secrets in a few requests (loopback only).
POST /cases takes [{"text": ..., "key": ..., "place": ...}, ...] and a batch id.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from opentelemetry import trace

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
log = logging.getLogger("cases")
tracer = trace.get_tracer("cases")
app = FastAPI()


@app.get("/health")
async def health() -> dict:
    return {"ok": True}


def _place(case: dict) -> None:
    text, key, place = case["text"], case.get("key"), case["place"]
    if place == "message":
        log.warning("user wrote: %s", text)
    elif place == "extra":
        extra = {"detail": text}
        if key:
            extra[key.replace("-", "_").replace(".", "_")] = text
        log.info("form received", extra=extra)
    elif place == "span_attribute":
        with tracer.start_as_current_span("handle form") as span:
            span.set_attribute("app.detail", text)
            if key:
                span.set_attribute(key, text)
    elif place == "span_event":
        with tracer.start_as_current_span("handle event") as span:
            span.add_event("form", {"detail": text, **({key: text} if key else {})})
    elif place == "exception":
        with tracer.start_as_current_span("handle failure"):
            try:
                raise ValueError(f"cannot parse {text}")
            except ValueError:
                log.exception("request failed")
                raise_in_span = trace.get_current_span()
                raise_in_span.record_exception(ValueError(text))
    elif place == "span_name":
        with tracer.start_as_current_span(f"GET {text}"):
            pass
    elif place == "event_name":
        with tracer.start_as_current_span("handle named event") as span:
            span.add_event(text)
    elif place == "attribute_key":
        with tracer.start_as_current_span("handle keyed form") as span:
            span.set_attribute(text, "v")
    elif place == "extra_key":
        log.info("form keys received", extra={text: "v"})
    elif place == "log_event_name":
        log.info("event received", extra={"event.name": text})
    elif place == "logger_name":
        logging.getLogger(f"cases.{text}").warning("named logger")


@app.post("/cases")
async def cases(request: Request) -> dict:
    body = await request.json()
    for case in body["cases"]:
        _place(case)
    log.info("batch done %s", body["batch"])
    with tracer.start_as_current_span(f"batch done {body['batch']}"):
        pass
    return {"placed": len(body["cases"])}


@app.get("/echo")
async def echo(request: Request) -> dict:
    log.info("echo called")
    return {"query": len(str(request.query_params))}
