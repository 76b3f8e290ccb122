"""The ``opentelemetry_distro`` entry point named ``otel_distro``.

It sets defaults for standard variables, and loads each instrumentation ``opentelemetry-instrument`` offers the
way the integration registry (``otel_distro/integrations/registry.py``) says: with its options, replaced by the
distro's own where the registry has one, followed by what the distro adds to it.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import wrapt
from opentelemetry.instrumentation.distro import BaseDistro

from otel_distro import configurator, settings
from otel_distro._sdk_private import instrumentor_checks
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
    options = integration.options(chosen) if integration is not None else {}
    if name.startswith("openai") or name in ("anthropic", "langchain"):
        from otel_distro import ai

        options.update(ai.instrumentor_options(name))
    return options


class OtelDistro(BaseDistro):
    def _configure(self, **kwargs: Any) -> None:
        # Runs before opentelemetry-instrument's loader: libraries not imported yet are checked on that import.
        instrumentor_checks.defer_unimported_checks()
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
        integration = registry.BY_NAME.get(name)
        modules = integration.modules if integration is not None else ()
        if modules and not any(module in sys.modules for module in modules):
            # Installed but not imported (yet): instrument on its first import, so an unused library costs
            # nothing (loading an instrumentor imports its library).
            registry.outcomes.note_waiting(name)
            for module in modules:
                wrapt.register_post_import_hook(
                    lambda _module, entry_point=entry_point, kwargs=kwargs: _instrument_once(entry_point, kwargs),
                    module)
            return
        _instrument_once(entry_point, kwargs)


_instrumented: set[str] = set()
_instrumenting = threading.Lock()
# Loading one instrumentation can import another's library (contrib's httpx module imports httpx2): that
# library's hook then waits until the first instrumentation is loaded, instead of loading it half-initialized.
_loading = threading.local()


def _instrument_once(entry_point: Any, kwargs: dict[str, Any]) -> None:
    """Load and apply one instrumentation as the registry says; a failure is logged and noted, never raised."""
    waiting = getattr(_loading, "waiting", None)
    if waiting is not None:
        waiting.append((entry_point, kwargs))
        return
    _loading.waiting = [(entry_point, kwargs)]
    try:
        while _loading.waiting:
            _load_and_apply(*_loading.waiting.pop(0))
    finally:
        _loading.waiting = None


def _load_and_apply(entry_point: Any, kwargs: dict[str, Any]) -> None:
    name = entry_point.name
    telemetry = configurator.current()
    if telemetry is None:
        return
    with _instrumenting:
        if name in _instrumented:
            return
        _instrumented.add(name)
    if _refused_now(entry_point):
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


def _refused_now(entry_point: Any) -> bool:
    """The requirement check the loader deferred to this first import: a refused library version is said once, as
    the loader would have at start-up, and the instrumentation is not applied."""
    conflict = instrumentor_checks.deferred_conflict(getattr(entry_point, "dist", None))
    if conflict is None:
        return False
    from otel_distro.integrations.states import describe_conflict

    why = describe_conflict(conflict)
    if why is None:  # its library is not installed as a distribution: nothing it could instrument
        return True
    registry.outcomes.note_refused(entry_point.name, why)
    _log.error("otel-distro: instrumentation %r not applied: %s", entry_point.name, why)
    return True
