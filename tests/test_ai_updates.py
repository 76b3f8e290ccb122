"""Price updates: only from OTEL_DISTRO_AI_PRICES_UPDATE_URL, through genai-prices' own updater.

A local HTTP server on 127.0.0.1 serves a price document in the format
genai-prices' ``UpdatePrices.fetch`` reads (a JSON list of providers, each with
its models and their prices in USD per million tokens); without the variable,
nothing is fetched and no socket is opened.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from genai_prices import data_snapshot, update_prices
from genai_prices.types import _providers_from_raw
from opentelemetry.trace import SpanKind

from otel_distro import ai
from otel_distro.ai import semconv
from otel_distro.ai.pricing import PriceBook
from tests.test_ai_metrics import CHAT, genai_prices, make_rig

# gpt-4o at $7 in / $21 out / $3.5 cache read per million tokens (bundled: 2.5 / 10 / 1.25).
DOC = [{
    "id": "openai", "name": "OpenAI", "api_pattern": r"https://api\.openai\.com",
    "models": [
        {"id": "gpt-4o", "match": {"equals": "gpt-4o"},
         "prices": {"input_mtok": 7, "output_mtok": 21, "cache_read_mtok": 3.5}},
        {"id": "gpt-4o-mini", "match": {"equals": "gpt-4o-mini"},
         "prices": {"input_mtok": 1, "output_mtok": 2}},
    ],
}]


class PriceServer:
    """Serves DOC at /prices.json (or an error status) and counts the requests it sees."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.status = 200
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = json.dumps(DOC).encode() if server.status == 200 else b"{}"
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/prices.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[PriceServer]:
    served = PriceServer()
    try:
        yield served
    finally:
        ai.uninstall()  # stops the updater; its shared thread exits on its own: wait for it
        thread = update_prices._shared_updater.thread
        if thread is not None:
            thread.join(10)
        data_snapshot.set_custom_snapshot(None)  # fetched prices outlive stop(): back to the bundled ones
        served.close()


def test_prices_come_from_the_update_url(server: PriceServer) -> None:
    rig = make_rig(OTEL_DISTRO_AI_PRICES_UPDATE_URL=server.url)
    assert rig.runtime.updater is not None
    assert rig.runtime.updater.wait(10) is True  # the first fetch has been applied
    assert server.requests == ["/prices.json"]
    assert data_snapshot.get_snapshot().from_auto_update

    cost = ai.record_call("openai", "gpt-4o", input_tokens=1000, output_tokens=1000, cache_read_tokens=400)
    assert cost == pytest.approx((600 * 7 + 400 * 3.5 + 1000 * 21) / 1e6)
    assert cost == pytest.approx(genai_prices("gpt-4o", 1000, 1000, 400))  # genai-prices agrees: same snapshot
    assert cost != pytest.approx((600 * 2.5 + 400 * 1.25 + 1000 * 10) / 1e6)  # the bundled price
    with rig.tracer().start_as_current_span("chat", kind=SpanKind.CLIENT, attributes=CHAT) as span:  # gpt-4o-mini
        span.set_attribute(semconv.USAGE_INPUT_TOKENS, 1_000_000)
        span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 1_000_000)
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "gpt-4o"}) == pytest.approx(cost)
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "gpt-4o-mini"}) == pytest.approx(3.0)
    assert {a[semconv.COST_SOURCE] for a, _ in rig.points(semconv.COST)} == {"local"}


def test_prices_cached_before_an_update_are_replaced_by_it() -> None:
    """A model priced before the first fetch lands must not keep its bundled price."""
    try:
        following, fixed = PriceBook(follow_updates=True), PriceBook()
        assert following.lookup("openai", "gpt-4o").input == fixed.lookup("openai", "gpt-4o").input == 2.5
        data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(_providers_from_raw(DOC), True))
        assert following.lookup("openai", "gpt-4o").input == 7.0
        data_snapshot.set_custom_snapshot(None)
        assert following.lookup("openai", "gpt-4o").input == 2.5
    finally:
        data_snapshot.set_custom_snapshot(None)


def _update_failures(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "genai-prices" and "Error updating" in r.getMessage()]


def test_a_failed_update_keeps_the_bundled_prices(server: PriceServer, caplog: pytest.LogCaptureFixture) -> None:
    server.status = 503
    with caplog.at_level(logging.WARNING):
        rig = make_rig(OTEL_DISTRO_AI_PRICES_UPDATE_URL=server.url)
        with pytest.raises(Exception, match="503"):  # genai-prices reports the failed fetch to waiters
            rig.runtime.updater.wait(10)
    # genai-prices wakes the waiters, then logs, from its own thread: give the line a moment.
    deadline = time.monotonic() + 5
    while not _update_failures(caplog) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(_update_failures(caplog)) == 1  # one line per failed fetch (hourly), from genai-prices
    assert server.requests == ["/prices.json"]
    assert not data_snapshot.get_snapshot().from_auto_update
    cost = ai.record_call("openai", "gpt-4o", input_tokens=1000, output_tokens=100)
    assert cost == pytest.approx(genai_prices("gpt-4o", 1000, 100), rel=1e-9)


def test_without_the_variable_nothing_is_fetched(server: PriceServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """No updater starts, genai-prices never fetches, and no socket connects anywhere."""
    connects: list[Any] = []
    updater_calls: list[str] = []

    def no_connect(sock: socket.socket, address: Any) -> None:
        connects.append(address)
        raise OSError("network access during an offline price test")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    monkeypatch.setattr(update_prices.UpdatePrices, "start", lambda self, **kw: updater_calls.append("start"))
    monkeypatch.setattr(update_prices.UpdatePrices, "fetch", lambda self: updater_calls.append("fetch"))

    rig = make_rig()  # OTEL_DISTRO_AI_PRICES_UPDATE_URL unset
    assert rig.runtime.updater is None
    for model in ("gpt-4o", "gpt-4o-mini", "o3-mini", "no-such-model"):
        ai.record_call("openai", model, input_tokens=100, output_tokens=10)
        with rig.tracer().start_as_current_span("chat", attributes={**CHAT, semconv.REQUEST_MODEL: model}) as span:
            span.set_attribute(semconv.USAGE_INPUT_TOKENS, 100)
            span.set_attribute(semconv.USAGE_OUTPUT_TOKENS, 10)
    assert rig.total(semconv.COST, **{semconv.REQUEST_MODEL: "gpt-4o"}) == pytest.approx(
        2 * genai_prices("gpt-4o", 100, 10), rel=1e-9)
    assert connects == [] and updater_calls == [] and server.requests == []
    assert not data_snapshot.get_snapshot().from_auto_update
    assert not any(t.name == "genai_prices:update" for t in threading.enumerate())
