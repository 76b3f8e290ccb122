"""Prompt and completion content on GenAI spans, span events and log records: one policy, applied at export.

``OTEL_DISTRO_AI_CONTENT``: ``off`` (the default: content attributes and GenAI event bodies are removed and
``otel_distro.gen_ai.content=removed`` says so), ``redacted`` (kept, with the redaction rules' secrets and PII
masked) or ``full`` (kept as captured). Kept content is cut to ``OTEL_DISTRO_AI_CONTENT_MAX_BYTES`` per text
value. The policy holds whatever an instrumentation's own capture setting is: the distro never adds content,
it only removes or masks what an instrumentation captured (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``,
``ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE`` ...).

Spans are rewritten while they end (:class:`ContentSpanProcessor`, before any exporter's processor sees them;
where the SDK's span internals do not allow that, the span exporters apply the policy to copies instead), log
records as they are emitted (:class:`ContentLogProcessor`, which the log pipeline runs before its batch
processors). This module imports nothing heavy: the log pipeline loads it at start-up.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk._logs import LogRecordProcessor
from opentelemetry.sdk.trace import Event, SpanProcessor

from otel_distro._internal_errors import report_internal_error
from otel_distro._sdk_private import span_attributes

OFF, REDACTED, FULL = "off", "redacted", "full"
MARKER = "otel_distro.gen_ai.content"
REMOVED = "removed"
_CUT = "…[truncated]"

# Attributes that hold prompts, completions, tool arguments and results (current and previous conventions,
# OpenLLMetry's indexed ones by prefix).
CONTENT_KEYS = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.prompt", "gen_ai.completion",
    "gen_ai.request.messages", "gen_ai.response.messages", "gen_ai.embeddings.input",
})
CONTENT_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.prompts", "llm.completions")
_GENAI_MARKERS = frozenset(("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system"))


def is_content_key(key: str) -> bool:
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


def _has_content(attributes: Mapping[str, Any]) -> bool:
    if not CONTENT_KEYS.isdisjoint(attributes):
        return True
    return any(key.startswith(CONTENT_PREFIXES) for key in attributes)


def _cut(text: str, max_bytes: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore") + _CUT


class ContentPolicy:
    """What to do with one content value; ``attributes`` and ``body`` return None when nothing changes."""

    def __init__(self, mode: str, max_bytes: int, redactor: Any = None) -> None:
        self.mode = mode
        self.max_bytes = max_bytes
        self._redactor = redactor

    def adopt(self, other: ContentPolicy) -> None:
        """Take ``other``'s mode (live configuration); the mode goes last, so that it never meets the old redactor."""
        self._redactor = other._redactor
        self.max_bytes = other.max_bytes
        self.mode = other.mode

    def _redacting(self) -> Any:
        if self._redactor is None:
            from otel_distro.redaction import Redactor

            self._redactor = Redactor()
        return self._redactor

    def value(self, value: Any) -> Any:
        if self.mode == REDACTED:
            value = self._redacting().any_value(value)
        return self._capped(value)

    def _capped(self, value: Any) -> Any:
        if isinstance(value, str):
            return _cut(value, self.max_bytes)
        if isinstance(value, Mapping):
            return {k: self._capped(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._capped(v) for v in value]
        return value

    def attributes(self, attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if not attributes or not _has_content(attributes):
            return None
        if self.mode == OFF:
            kept = {k: v for k, v in attributes.items() if not is_content_key(k)}
            kept[MARKER] = REMOVED
            return kept
        return {k: self.value(v) if is_content_key(k) else v for k, v in attributes.items()}

    def events(self, events: Sequence[Any]) -> list[Any] | None:
        """The span events with the policy applied to their attributes; None when nothing changes."""
        changed = [(e, self.attributes(e.attributes)) for e in events]
        if all(new is None for _, new in changed):
            return None
        return [e if new is None else Event(e.name, new, e.timestamp) for e, new in changed]

    def body(self, body: Any) -> tuple[bool, Any]:
        """(changed, new body) for the body of a GenAI event."""
        if body is None:
            return False, None
        if self.mode == OFF:
            return True, None
        return True, self.value(body)


def is_genai(attributes: Mapping[str, Any] | None) -> bool:
    # One pass over the keys: a span's attribute map answers ``in`` for a missing key by raising KeyError inside.
    return bool(attributes) and not _GENAI_MARKERS.isdisjoint(attributes)  # type: ignore[arg-type]


class ContentSpanProcessor(SpanProcessor):
    """Applies the policy to GenAI spans and their events while they end (a SpanProcessor)."""

    late_on_end_ok = True  # it works in _on_ending only

    def __init__(self, policy: ContentPolicy) -> None:
        self.policy = policy

    def _on_ending(self, span: Any) -> None:
        self.apply(span)

    def apply(self, span: Any) -> None:
        """Apply the policy to ``span`` (an ending span) if it is a GenAI span."""
        try:
            if not is_genai(span_attributes.READ(span)):
                return  # every other span: one look at its attribute names (its events are never read)
            self._apply(span)
        except Exception as err:
            report_internal_error("ai.content_span", "the GenAI content policy was not applied to a span", err)

    def _apply(self, span: Any) -> None:
        from otel_distro._sdk_private import ending_span

        attributes = self.policy.attributes(span.attributes)
        events = self.policy.events(span.events) if span.events else None
        if (attributes is not None or events is not None) and not ending_span.rewrite(span, attributes, events):
            # Before any exporter's processor has this span: from now on its copy is what leaves the process.
            enforce_at_export(self.policy)
            report_internal_error("ai.content_rewrite", "GenAI span content cannot be changed while spans end "
                                  "(the SDK's span internals are not as tested): OTEL_DISTRO_AI_CONTENT is applied "
                                  "to copies at export from now on")


class ContentLogProcessor(LogRecordProcessor):
    """Applies the policy to log records that are GenAI events or carry content attributes (a LogRecordProcessor).

    Runs before the batch processors, which copy the record: replacing its attributes and body here is what
    they export. GenAI events come through the OpenTelemetry Logger API; the stdlib logging bridge's fast path
    (plain log lines, straight into the batch queues) does not run this processor (``skips_plain_log_lines``).
    """

    skips_plain_log_lines = True

    def __init__(self, policy: ContentPolicy) -> None:
        self.policy = policy

    def on_emit(self, log_record: Any) -> None:
        try:
            record = log_record.log_record
            genai_event = str(getattr(record, "event_name", None) or "").startswith("gen_ai.")
            if not genai_event and not is_genai(record.attributes):
                return  # an application's own log line: left alone, at the cost of three lookups
            attributes = self.policy.attributes(record.attributes)
            if attributes is not None:
                record.attributes = attributes
            if genai_event:
                changed, body = self.policy.body(record.body)
                if changed:
                    record.body = body
                    if self.policy.mode == OFF:
                        record.attributes = {**(record.attributes or {}), MARKER: REMOVED}
        except Exception as err:
            report_internal_error("ai.content_log", "the GenAI content policy was not applied to a log record", err)

    def emit(self, log_record: Any) -> None:  # the SDK's older name
        self.on_emit(log_record)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_policies: weakref.WeakSet[ContentPolicy] = weakref.WeakSet()
# The policy the span exporters apply themselves, set only when spans cannot be changed while they end: the
# content is then removed or masked on copies, never exported as captured.
_at_export: ContentPolicy | None = None


def enforce_at_export(policy: ContentPolicy) -> None:
    global _at_export
    _at_export = policy


def policy_at_export() -> ContentPolicy | None:
    return _at_export


def policy_from_settings(settings: Any) -> ContentPolicy:
    redactor = None
    if settings.ai_content == REDACTED and settings.redact:
        from otel_distro.redaction import from_settings

        redactor = from_settings(settings)
    policy = ContentPolicy(settings.ai_content, settings.ai_content_max_bytes, redactor)
    _policies.add(policy)
    return policy


def change_live(settings: Any) -> None:
    """Every policy built so far (the span and the log processors') follows these settings from now on."""
    fresh = policy_from_settings(settings)
    for policy in list(_policies):
        if policy is not fresh:
            policy.adopt(fresh)
