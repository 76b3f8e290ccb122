"""Attributes and events of a span changed while it ends (the SDK's ``_on_ending`` hook), before any exporter sees it.

A span's cost is known only when its call has ended, and the SDK freezes a span's attributes before it calls
span processors. The fast path writes into the frozen attribute map of the ending span (opentelemetry-sdk
1.44-1.45: ``Span._attributes`` is a ``BoundedAttributes`` holding a ``_dict``); ``_on_ending`` runs for every
processor before any ``on_end``, so the batch processor queues the span with the added attributes. The public
path adds nothing: the cost is then in the metrics only. ``rewrite`` (the GenAI content policy) replaces the
attributes and events (``Span._events`` is a ``BoundedList`` holding a ``_dq`` deque); its public path cannot
remove anything, so the policy is then applied to copies at export (``ai.content.policy_at_export``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor

from otel_distro._sdk_private import FastPath


def _write_frozen(span: Any, attributes: Mapping[str, Any]) -> bool:
    span._attributes._dict.update(attributes)
    return True


def _write_nothing(span: Any, attributes: Mapping[str, Any]) -> bool:
    return False




def _rewrite_frozen(span: Any, attributes: Mapping[str, Any] | None, events: Sequence[Any] | None) -> bool:
    if attributes is not None:
        span._attributes._dict.clear()
        span._attributes._dict.update(attributes)
    if events is not None:
        span._events._dq.clear()
        span._events._dq.extend(events)
    return True


def _rewrite_refused(span: Any, attributes: Mapping[str, Any] | None, events: Sequence[Any] | None) -> bool:
    return False




def _probe() -> bool:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider

    span = TracerProvider().get_tracer("probe").start_span("probe")
    span.end()
    add_attributes(span, {"probe": 1})
    return hasattr(SpanProcessor, "_on_ending") and span.attributes.get("probe") == 1


class _EndingSeen(SpanProcessor):
    """Notes whether the SDK calls a processor's ending hook (the rewrite is of no use otherwise)."""

    seen = False

    def _on_ending(self, span: Any) -> None:
        self.seen = True


def _probe_rewrite() -> bool:
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    ending = _EndingSeen()
    provider.add_span_processor(ending)
    span = provider.get_tracer("probe").start_span("probe", attributes={"gone": 1})
    span.add_event("gone")
    span.end()
    rewrite(span, {"kept": 1}, [])
    return ending.seen and dict(span.attributes) == {"kept": 1} and not span.events


def new_guards() -> tuple[FastPath[bool], FastPath[bool]]:
    """The (add_attributes, rewrite) guards, not yet probed (the GenAI set-up probes the ones it uses)."""
    return (FastPath("ending_span.add_attributes", _write_frozen, _write_nothing),
            FastPath("ending_span.rewrite", _rewrite_frozen, _rewrite_refused))


add_attributes, rewrite = new_guards()
