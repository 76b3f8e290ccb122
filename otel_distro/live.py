"""Settings changed while the service runs: the ones the settings table marks ``live``.

:func:`prepare` (called by the configurator when remote configuration is on, before any tracer is taken) puts a
:class:`LiveSampler` in front of the configured sampler; :class:`LiveSettings` then applies a validated set of
values to the running telemetry:

- ``sampler_arg``: the root sampler becomes a trace-id ratio sampler with that ratio (parent-based when the
  configured sampler was), for every tracer, including those taken before;
- ``log_export_level``: the log bridge's export threshold;
- ``redact_keys`` / ``redact_patterns``: the redaction rules every exporter and the console apply;
- ``ai_content``: the GenAI content policy (off, redacted, full) of the span and log processors.

A value equal to the start-up one restores the start-up behaviour (the configured sampler itself).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from otel_distro import settings as settings_

REMOTE_SOURCE = "remote (OpAMP)"


class LiveSampler(Sampler):
    """Delegates to a sampler that can be replaced at any time (one attribute read per span)."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(self, parent_context: Context | None, trace_id: int, name: str,
                      kind: SpanKind | None = None, attributes: Attributes = None,
                      links: Sequence[Link] | None = None, trace_state: Any = None) -> SamplingResult:
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"Live{{{self.delegate.get_description()}}}"


def prepare(tracer_provider: Any) -> LiveSampler:
    """Put a LiveSampler in front of the provider's sampler; call before any tracer is taken."""
    sampler = LiveSampler(tracer_provider.sampler)
    tracer_provider.sampler = sampler
    return sampler


def _ratio_sampler(chosen: settings_.Settings, ratio: float) -> Sampler:
    from otel_distro import traces

    # Under a configuration file the variable's sampler is not in use: parent-based, the spec's default.
    parent_based = chosen.declarative is not None or chosen.sampler.startswith("parentbased_")
    name = "parentbased_traceidratio" if parent_based else "traceidratio"
    return traces.sampler(dataclasses.replace(chosen, sampler=name, sampler_arg=ratio))


class RefusedChange(ValueError):
    """A remote configuration that cannot be applied; the message says why. Nothing was changed."""


_REDACTION_FIELDS = frozenset({"redact_keys", "redact_patterns"})


class LiveSettings:
    """Applies remote values to the running telemetry; the start-up values are what an absent key means."""

    def __init__(self, telemetry: Any, sampler: LiveSampler) -> None:
        from otel_distro import redaction

        self._telemetry = telemetry
        self._startup = telemetry.settings
        self._startup_sampler = sampler.delegate
        self._sampler = sampler
        self._redactor = redaction.from_settings(self._startup)  # the one every exporter holds
        self._lock = threading.Lock()

    @property
    def current(self) -> settings_.Settings:
        return self._telemetry.settings

    def apply(self, requested: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the whole map, then apply it; return the fields whose value changed. Raises RefusedChange."""
        try:
            values = settings_.live_values(requested)
        except settings_.InvalidValue as err:
            raise RefusedChange(str(err)) from None
        if self._redactor is None and _REDACTION_FIELDS & values.keys():
            raise RefusedChange("redact_keys/redact_patterns: redaction is off (OTEL_DISTRO_REDACT=false)")
        startup = self._startup
        wanted = {f: values.get(f, getattr(startup, f)) for f in settings_.LIVE_FIELDS}
        with self._lock:
            current = self._telemetry.settings
            changed = {f: v for f, v in wanted.items() if getattr(current, f) != v}
            self._sampler.delegate = _ratio_sampler(startup, values["sampler_arg"]) \
                if "sampler_arg" in values else self._startup_sampler
            if "log_export_level" in changed:
                _set_log_level(wanted["log_export_level"])
            if "ai_content" in changed:
                from otel_distro.ai import content

                content.change_live(dataclasses.replace(current, ai_content=wanted["ai_content"]))
            if self._redactor is not None and _REDACTION_FIELDS & changed.keys():
                from otel_distro.redaction import Redactor

                self._redactor.adopt_rules(Redactor(wanted["redact_keys"], wanted["redact_patterns"],
                                                    current.redact_emails, current.redact_max_length))
            sources = dict(current.sources)
            sources.update({f: REMOTE_SOURCE if f in values else startup.sources.get(f, "default")
                            for f in settings_.LIVE_FIELDS})
            self._telemetry.settings = dataclasses.replace(current, **wanted, sources=sources)
        return changed


def _set_log_level(level: int) -> None:
    from otel_distro import logs

    handler = logs.bridge()
    if handler is None:
        return
    if handler.export_level != sys.maxsize:  # maxsize: the bridge only prints, exports nothing
        handler.export_level = level
    if handler.console is None:  # with a console the handler sees every record; export_level filters
        handler.setLevel(level)
