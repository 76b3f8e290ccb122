"""The lean SERVER span seam: when its fast path raises mid-request the request is served and its span arrives."""

from __future__ import annotations

import asyncio
import logging
import textwrap

import pytest
from opentelemetry.sdk.trace import TracerProvider

from otel_distro._sdk_private import server_span as seam
from tests.conftest import BIN, free_port, fresh_guards, http_get, telemetry_env
from tests.test_asgi_middleware import Rig


@pytest.fixture
def guards(monkeypatch: pytest.MonkeyPatch) -> tuple:
    return fresh_guards(monkeypatch, seam, "START", "ADD_ATTRIBUTES")


def _changed_private_signature(*args: object) -> None:
    raise TypeError("_server_span() takes 4 positional arguments but 5 were given")


def test_the_fast_path_failing_mid_request_falls_back_for_good(
        guards, production_errors, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    start, _ = guards
    rig = Rig()
    assert rig.request("GET", "/items/1") == 200
    monkeypatch.setattr(seam, "_server_span", _changed_private_signature)
    assert [rig.request("GET", "/items/2"), rig.request("GET", "/boom"), rig.request("GET", "/items/3")] \
        == [200, 500, 200]
    spans = rig.spans.get_finished_spans()
    assert [s.name for s in spans] == ["GET /items/{item_id}", "GET /items/{item_id}", "GET /boom",
                                       "GET /items/{item_id}"]
    assert [s.attributes["http.response.status_code"] for s in spans] == [200, 200, 500, 200]
    assert not start.active
    warnings = [r.getMessage() for r in caplog.records if "server_span.start" in r.getMessage()]
    assert len(warnings) == 1 and "TypeError" in warnings[0], warnings


def test_under_our_tests_the_failure_is_raised(guards, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig()
    monkeypatch.setattr(seam, "_server_span", _changed_private_signature)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        pass

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/items/7", "raw_path": b"/items/7", "query_string": b"", "root_path": "", "headers": []}
    with pytest.raises(TypeError):
        asyncio.run(rig.app(scope, receive, send))


class _BrokenTracerProvider(TracerProvider):
    def get_tracer(self, *args, **kwargs):
        tracer = super().get_tracer(*args, **kwargs)

        def start_span(*a, **k):
            raise RuntimeError("tracer broken")

        tracer.start_span = start_span
        tracer._is_enabled = lambda: False  # the lean path hands over to start_span
        return tracer


def test_a_span_that_cannot_be_started_at_all_leaves_the_request_served(guards, production_errors) -> None:
    rig = Rig(tracer_provider=_BrokenTracerProvider())
    assert [rig.request("GET", "/items/1"), rig.request("GET", "/items/2")] == [200, 200]
    assert rig.spans.get_finished_spans() == ()


# The service's app module: from the second span on, the seam's private step raises.
_BROKEN_SHOP = textwrap.dedent('''
    from otel_distro._sdk_private import server_span as seam

    made = seam._server_span
    calls = []

    def changed_after_the_first(*args):
        calls.append(1)
        if len(calls) > 1:
            raise TypeError("_server_span() got an unexpected keyword argument")
        return made(*args)

    seam._server_span = changed_after_the_first

    from examples.fastapi_app.main import app  # noqa: E402
''')


@pytest.mark.integration
def test_a_service_whose_fast_path_breaks_keeps_answering_and_exporting(
        receiver, start_service, tmp_path) -> None:
    (tmp_path / "broken_shop.py").write_text(_BROKEN_SHOP)
    port = free_port()
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "broken_shop:app", "--host", "127.0.0.1", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")  # /health is excluded from tracing: no span yet
    statuses = [http_get(base + path) for path in ("/items/1", "/items/2", "/items", "/items/1")]
    assert statuses == [200, 200, 200, 200], service.output()
    spans = receiver.wait_for(lambda: len(receiver.spans()) >= 4 and receiver.spans(), what="four server spans")
    assert sorted(s.name for s in spans) == ["GET /items", "GET /items/{item_id}", "GET /items/{item_id}",
                                             "GET /items/{item_id}"]
    output = service.output()
    assert output.count("server_span.start") == 1, output
