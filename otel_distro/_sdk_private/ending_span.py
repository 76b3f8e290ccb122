"""Attributes added to a span while it ends (the SDK's ``_on_ending`` hook), before any exporter sees it.

A span's cost is known only when its call has ended, and the SDK freezes a span's attributes before it calls
span processors. The fast path writes into the frozen attribute map of the ending span (opentelemetry-sdk
1.44-1.45: ``Span._attributes`` is a ``BoundedAttributes`` holding a ``_dict``); ``_on_ending`` runs for every
processor before any ``on_end``, so the batch processor queues the span with the added attributes. The public
path adds nothing: the cost is then in the metrics only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from otel_distro._sdk_private import FastPath


def _write_frozen(span: Any, attributes: Mapping[str, Any]) -> bool:
    span._attributes._dict.update(attributes)
    return True


def _write_nothing(span: Any, attributes: Mapping[str, Any]) -> bool:
    return False


add_attributes: FastPath[bool] = FastPath("ending_span.add_attributes", _write_frozen, _write_nothing)


def _probe() -> bool:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    span = TracerProvider().get_tracer("probe").start_span("probe")
    span.end()
    add_attributes(span, {"probe": 1})
    return hasattr(SpanProcessor, "_on_ending") and span.attributes.get("probe") == 1
