"""Runs uvicorn with parts of the distro switched off, for ``bench/server_cpu_breakdown.py``.

    BENCH_SWITCH_OFF=span,log-bridge opentelemetry-instrument python bench/server_ablations.py <uvicorn args>

Each part named in BENCH_SWITCH_OFF is replaced by a no-op before uvicorn imports the app (the distro is
configured already: ``opentelemetry-instrument`` did it). Benchmark only: what is left is no longer the product.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Callable


def _middleware() -> None:
    from otel_distro.integrations import asgi

    async def pass_through(self, scope, receive, send):  # type: ignore[no-untyped-def]
        await self.app(scope, receive, send)

    asgi.TelemetryMiddleware.__call__ = pass_through  # type: ignore[method-assign]


def _span() -> None:
    from opentelemetry.trace import INVALID_SPAN

    from otel_distro.integrations import server_span

    server_span.ServerSpans.start = lambda self, name, context, attributes: INVALID_SPAN  # type: ignore[method-assign]


def _span_processors() -> None:
    from opentelemetry import trace

    trace.get_tracer_provider()._active_span_processor._span_processors = ()  # type: ignore[attr-defined]


def _histogram_points() -> None:
    from otel_distro.integrations.histogram_points import HistogramPoints

    HistogramPoints.record = lambda self, amounts, key, attributes: None  # type: ignore[method-assign]


def _active_requests() -> None:
    from otel_distro.integrations import asgi

    shared = (itertools.count(), itertools.count())
    asgi._ACTIVE.counts = lambda key: shared  # type: ignore[method-assign]


def _log_bridge() -> None:
    from otel_distro.logs.bridge import BridgeHandler

    BridgeHandler.handle = lambda self, record: False  # type: ignore[method-assign]


SWITCHES: dict[str, Callable[[], None]] = {
    "middleware": _middleware,  # the whole request middleware: span, metrics, everything
    "span": _span,  # the SERVER span (the middleware still runs, with an invalid span)
    "span-processors": _span_processors,  # GenAI, database-duration and batch processors
    "histogram-points": _histogram_points,  # the request's duration and body-size points
    "active-requests": _active_requests,  # http.server.active_requests counting
    "log-bridge": _log_bridge,  # log records: neither queued nor exported
}


def main() -> None:
    for name in filter(None, os.environ.get("BENCH_SWITCH_OFF", "").split(",")):
        SWITCHES[name]()
    sys.argv = ["uvicorn", *sys.argv[1:]]
    from uvicorn.main import main as uvicorn_main

    uvicorn_main()


if __name__ == "__main__":
    main()
