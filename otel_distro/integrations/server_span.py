"""The middleware's SERVER spans: started and completed on the lean fast path while it holds.

The fast path (:mod:`otel_distro._sdk_private.server_span`) builds the SDK span without the SDK's per-attribute
re-checks. Whatever it would build differently goes through ``tracer.start_span`` as before: a tracer that is not
the SDK's, a sampler that returns other attributes than plain ones, limits below what is added, an SDK whose
``Span`` has other fields than the ones it sets (probed once, at start-up), and any failure of the fast path
(which then stays off for the process).
"""

from __future__ import annotations

from typing import Any

from otel_distro._sdk_private import server_span as _seam


class ServerSpans:
    """Starts and completes the middleware's SERVER spans for one tracer."""

    def __init__(self, tracer: Any) -> None:
        self.tracer = tracer
        self.lean = _seam.START.active and _seam.tracer_is_lean(tracer)
        self._start_lean = _seam.START
        self._add_attributes = _seam.ADD_ATTRIBUTES

    def start(self, name: str, context: Any, attributes: dict[str, Any]) -> Any:
        """What ``tracer.start_span(name, context, SpanKind.SERVER, attributes)`` returns."""
        if self.lean:
            return self._start_lean(self.tracer, name, context, attributes)
        return _seam.start_public(self.tracer, name, context, attributes)

    def add_attributes(self, span: Any, attributes: dict[str, Any]) -> None:
        """``span.set_attributes(attributes)``, without re-checking plain values."""
        self._add_attributes(span, attributes)
