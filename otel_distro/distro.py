"""The ``opentelemetry_distro`` entry point named ``otel_distro``.

It sets defaults for standard variables, and loads each instrumentation ``opentelemetry-instrument`` offers the
way the integration registry (``otel_distro/integrations/registry.py``) says: with its options, replaced by the
distro's own where the registry has one, followed by what the distro adds to it.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

from otel_distro import configurator, settings
from otel_distro.integrations import registry
from otel_distro.integrations.registry import excluded_urls_pattern

__all__ = ["OtelDistro", "excluded_urls_pattern", "instrumentor_options"]

_log = logging.getLogger("otel_distro")

# Done by the configurator itself (logs bridged once; process metrics with our
# own selection), so their auto-instrumentation entry points are skipped.
_OWNED_BY_CONFIGURATOR = frozenset({"logging", "system_metrics"})


def instrumentor_options(name: str, chosen: settings.Settings) -> dict[str, Any]:
    """The options the distro passes to the instrumentor named ``name``."""
    integration = registry.BY_NAME.get(name)
    return integration.options(chosen) if integration is not None else {}


class OtelDistro(BaseDistro):
    def _configure(self, **kwargs: Any) -> None:
        if settings.hook_inherited_unconfigured():
            return  # the configurator stays quiet too
        settings.claim_hook()
        settings.apply_distro_defaults()

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        name = entry_point.name
        telemetry = configurator.current()
        if telemetry is None or name in _OWNED_BY_CONFIGURATOR:
            # Disabled, failed, or done already: instrumenting would cost without reporting.
            return
        chosen = telemetry.settings
        integration = registry.BY_NAME.get(name)
        try:
            if integration is not None and integration.replacement and integration.replaces_when(chosen):
                integration.replacement(chosen)
            else:
                entry_point.load()().instrument(**{**kwargs, **instrumentor_options(name, chosen)})
                if integration is not None and integration.after is not None:
                    integration.after(chosen)
            registry.outcomes.note_instrumented(name)
        except Exception as err:  # one broken instrumentation must not stop the app
            why = f"{type(err).__name__}: {err}"
            registry.outcomes.note_failed(name, why)
            _log.warning("otel-distro: instrumentation %r skipped: %s", name, why)
