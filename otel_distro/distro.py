"""The ``opentelemetry_distro`` entry point named ``otel_distro``.

It only sets defaults for standard variables, and passes the distro's options
to the instrumentors that ``opentelemetry-instrument`` loads.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro

from otel_distro import configurator, settings

_log = logging.getLogger("otel_distro")

# Done by the configurator itself (logs bridged once; process metrics with our
# own selection), so their auto-instrumentation entry points are skipped.
_OWNED_BY_CONFIGURATOR = frozenset({"logging", "system_metrics"})
# Served by the distro's lean middleware (integrations/asgi.py) unless
# OTEL_DISTRO_HTTP_INSTRUMENTATION=contrib.
_LEAN_ASGI = frozenset({"fastapi", "starlette"})


def excluded_urls_pattern(paths: tuple[str, ...]) -> str:
    """Contrib's excluded-URL list (regexes searched in the full URL) for plain paths."""
    return ",".join(re.escape(path) + r"(?:[/?#]|$)" for path in paths)


def instrumentor_options(name: str, chosen: settings.Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if name in ("fastapi", "flask", "starlette", "django", "falcon", "tornado", "pyramid"):
        options["excluded_urls"] = excluded_urls_pattern(chosen.excluded_urls)
    if name in ("fastapi", "starlette") and not chosen.asgi_subspans:
        options["exclude_spans"] = ["receive", "send"]
    return options


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
        options = {**kwargs, **instrumentor_options(name, telemetry.settings)}
        try:
            if name in _LEAN_ASGI and telemetry.settings.http_instrumentation == "distro":
                from otel_distro.integrations import asgi

                chosen = telemetry.settings
                asgi.instrument(chosen.excluded_urls, asgi.HeaderCapture(
                    chosen.capture_request_headers, chosen.capture_response_headers, chosen.sanitize_header_names))
                return
            entry_point.load()().instrument(**options)
            if name == "celery":
                from otel_distro.integrations import celery as celery_integration
                celery_integration.instrument()
            elif name == "flask":
                from otel_distro.integrations import flask as flask_integration
                flask_integration.instrument()
        except Exception as err:  # one broken instrumentation must not stop the app
            _log.warning("otel-distro: instrumentation %r skipped: %s: %s", name,
                         type(err).__name__, err)
