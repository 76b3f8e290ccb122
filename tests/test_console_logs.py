"""Console logs: OTEL_DISTRO_LOG_FORMAT=json|text, trace correlation, one line per record."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_distro import console, logs, redaction, resource
from otel_distro.settings import load
from tests.conftest import BIN, free_port, http_get, telemetry_env

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@pytest.fixture
def json_console():
    """The bridge with a JSON console writing to a buffer, and an in-memory OTLP stand-in."""
    chosen = load({"OTEL_SERVICE_NAME": "unit", "OTEL_DISTRO_LOG_FORMAT": "json"})
    memory = InMemoryLogRecordExporter()
    provider = logs.build(chosen, resource.build(chosen), log_exporters=[])
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    buffer = io.StringIO()
    writer = console.from_settings(chosen, "unit", redaction.from_settings(chosen))
    writer.stream = lambda: buffer
    logs.remove_bridge()
    logs.install_bridge(provider, logging.INFO, console=writer)
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield buffer, memory
    finally:
        logs.remove_bridge()
        provider.shutdown()


def _lines(buffer: io.StringIO) -> list[dict]:
    logs.bridge().flush()
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_line_fields_extras_and_exception(json_console) -> None:
    buffer, _ = json_console
    log = logging.getLogger("shop.orders")
    log.info("order %s created", "A-7", extra={"item_id": 2, "total": 93.0, "card": "4111 1111 1111 1111"})
    try:
        raise KeyError("no such item for bob@example.com")
    except KeyError:
        log.exception("lookup failed")
    created, failed = _lines(buffer)
    assert RFC3339_UTC.match(created["timestamp"])
    assert {k: created[k] for k in ("level", "logger", "message", "service.name", "item_id", "total", "card")} == {
        "level": "INFO", "logger": "shop.orders", "message": "order A-7 created", "service.name": "unit",
        "item_id": 2, "total": 93.0, "card": "[REDACTED]"}
    assert "trace_id" not in created  # logged outside any span
    assert failed["exception.type"] == "KeyError"
    assert "bob@example.com" not in json.dumps(failed)
    assert "b***@example.com" in failed["exception.message"]
    assert "Traceback" in failed["exception.stacktrace"]


def test_a_record_inside_a_span_carries_its_ids_on_the_console_and_in_otlp(json_console) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    buffer, memory = json_console
    with TracerProvider().get_tracer("t").start_as_current_span("request") as span:
        logging.getLogger("app").warning("inside")
    (line,) = _lines(buffer)
    context = span.get_span_context()
    assert (line["trace_id"], line["span_id"]) == (f"{context.trace_id:032x}", f"{context.span_id:016x}")
    (record,) = [r.log_record for r in memory.get_finished_logs() if r.log_record.body == "inside"]
    assert (record.trace_id, record.span_id) == (context.trace_id, context.span_id)


def test_app_console_handlers_step_aside_and_come_back(json_console, capsys: pytest.CaptureFixture) -> None:
    root = logging.getLogger()
    logging.basicConfig(level=logging.INFO, force=True)  # adds a stderr StreamHandler
    assert not [h for h in root.handlers if console.is_console_handler(h)]
    logging.getLogger("app").info("once")
    logs.bridge().flush()
    # Printed once, as JSON, where the app's handler wrote (stderr).
    assert [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()] == ["once"]
    logs.remove_bridge()
    assert [h for h in root.handlers if console.is_console_handler(h)]  # the app's handler is back
    for handler in [h for h in root.handlers if console.is_console_handler(h)]:
        root.removeHandler(handler)


def test_text_format_line() -> None:
    fmt = console.ConsoleFormat("unit", redaction.Redactor())
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "paid with %s", ("4111111111111111",), None)
    record.created = 0.5
    line = fmt.text(console.Entry(record, record.getMessage(), None))
    assert line == "1970-01-01T00:00:00.500000Z WARNING  app paid with [REDACTED]"


def _shop(receiver, start_service, **env: str):
    port = free_port()
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "examples.fastapi_app.main:app", "--host", "127.0.0.1", "--port", str(port)],
                            telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop", **env))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    return service, base


@pytest.mark.integration
def test_json_console_and_otlp_log_share_the_request_trace_id(receiver, start_service) -> None:
    service, base = _shop(receiver, start_service, OTEL_DISTRO_LOG_FORMAT="json")
    assert http_get(base + "/orders?item_id=2&quantity=3", method="POST") == 200
    (span,) = receiver.wait_for(lambda: [s for s in receiver.spans() if s.name == "POST /orders"],
                                what="the order span")
    (record,) = receiver.wait_for(lambda: [l for l in receiver.logs() if l.body == "order created"],
                                  what="the order log")
    assert record.trace_id == span.trace_id
    lines = receiver.wait_for(lambda: [json.loads(l) for l in service.output().splitlines()
                                       if l.startswith("{") and '"order created"' in l], what="the console line")
    (line,) = lines
    assert line["trace_id"] == span.trace_id and line["span_id"] == record.span_id
    assert (line["service.name"], line["item_id"], line["quantity"], line["total"]) == ("shop", 2, 3, 93.0)
    # basicConfig's text handler stepped aside: the record is printed once, as JSON.
    assert not [l for l in service.output().splitlines() if "order created" in l and not l.startswith("{")]


@pytest.mark.integration
def test_default_leaves_the_app_console_as_it_was(receiver, start_service) -> None:
    service, base = _shop(receiver, start_service)
    assert http_get(base + "/items/1") == 200
    receiver.wait_for(lambda: [l for l in receiver.logs() if l.body == "item 1 served"], what="the log")
    receiver.wait_for(lambda: "INFO shop item 1 served" in service.output(), what="the app's own line")
    assert not [l for l in service.output().splitlines() if l.startswith('{"timestamp"')]


def test_console_only_without_otlp_logs(tmp_path) -> None:
    env = telemetry_env("http://127.0.0.1:9", OTEL_LOGS_EXPORTER="none", OTEL_TRACES_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="none", OTEL_DISTRO_LOG_FORMAT="text", OTEL_SERVICE_NAME="t")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c",
                           "import logging; logging.basicConfig(level=logging.INFO); "
                           "logging.getLogger('job').info('token=abc123 done')"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    (line,) = [l for l in done.stderr.splitlines() if " job " in l]
    assert line.endswith("job token=[REDACTED] done") and "INFO" in line


def test_extras_go_out_as_they_were_when_logged(json_console) -> None:
    buffer, memory = json_console
    tags = ["a", "b"]
    nested = {"ids": [1, 2]}
    logging.getLogger("shop").info("tagged", extra={"tags": tags, "nested": nested})
    tags.append("changed later")
    nested["ids"].append(3)
    (line,) = _lines(buffer)
    assert line["tags"] == ["a", "b"] and line["nested"] == {"ids": [1, 2]}
    (record,) = [r.log_record for r in memory.get_finished_logs() if r.log_record.body == "tagged"]
    assert tuple(record.attributes["tags"]) == ("a", "b")
    assert record.attributes["nested"] == str({"ids": [1, 2]})


def test_a_record_the_apps_own_handler_formatted_first_has_only_its_extras(json_console) -> None:
    """The app's console handler runs before the bridge and adds message and asctime: neither is an extra."""
    buffer, memory = json_console
    formatted_first = logging.StreamHandler(io.StringIO())
    formatted_first.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    shop = logging.getLogger("shop.formatted")
    shop.addHandler(formatted_first)  # runs before the root's bridge: the record is formatted when it gets there
    try:
        shop.info("plain %s", 1)
        shop.info("tagged", extra={"tenant": "acme"})
    finally:
        shop.removeHandler(formatted_first)
    plain, tagged = _lines(buffer)
    assert "asctime" not in plain and plain["message"] == "plain 1"
    assert tagged["tenant"] == "acme" and "asctime" not in tagged
    exported = {r.log_record.body: dict(r.log_record.attributes or {}) for r in memory.get_finished_logs()}
    assert "asctime" not in exported["plain 1"] and "message" not in exported["plain 1"]
    assert exported["tagged"].get("tenant") == "acme" and "asctime" not in exported["tagged"]
