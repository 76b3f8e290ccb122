"""Seam: FastAPI's own telemetry turned off for apps the distro's middleware already traces.

Tested with FastAPI 0.142 to 0.165. FastAPI >= 0.142 traces requests itself when providers are configured; with the
distro's middleware in front that would be a second span per request. Its switch is the constructor's
``telemetry=`` argument, which the distro cannot pass to the user's ``FastAPI()``; the private ``app._telemetry``
dict holds what it was given, read on each request. A FastAPI without the argument has no telemetry of its own:
nothing to do. When the dict is not there although the argument is, FastAPI's telemetry stays on (each request may
then have two SERVER spans) and that is reported once.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from otel_distro._sdk_private import FastPath

_OFF = {"tracing": False, "metrics": False, "logs": False}


def _has_native_telemetry(app: Any) -> bool:
    return "telemetry" in inspect.signature(type(app).__init__).parameters


def _turn_off(app: Any) -> None:
    config = app._telemetry
    if not isinstance(config, dict):
        raise TypeError(f"FastAPI's _telemetry is a {type(config).__name__}, not the dict it was tested with")
    config.update(_OFF)


def _leave_on(app: Any) -> None:
    """The public path: none (FastAPI's switch is its constructor's argument)."""


def new_guards() -> tuple[FastPath[None], FastPath[bool]]:
    return (FastPath("fastapi_telemetry", _turn_off, _leave_on),
            FastPath("fastapi_telemetry.own_providers", _own_providers, _providers_unknown))


_PROVIDER_KEYS = ("tracer_provider", "meter_provider", "logger_provider")


def _own_providers(app: Any) -> bool:
    config = app._telemetry
    return isinstance(config, dict) and any(config.get(key) is not None for key in _PROVIDER_KEYS)


def _providers_unknown(app: Any) -> bool:
    """The public path: FastAPI says nothing of the providers it was given, so the app is taken to have none."""
    return False


TURN_OFF, OWN_PROVIDERS = new_guards()


def has_own_providers(app: Any) -> bool:
    """Whether ``app`` is a FastAPI app given telemetry providers of its own (``FastAPI(telemetry={...})``)."""
    fastapi = sys.modules.get("fastapi")
    return (fastapi is not None and isinstance(app, fastapi.FastAPI) and _has_native_telemetry(app)
            and OWN_PROVIDERS(app))


def turn_off_native_telemetry(app: Any) -> None:
    """Make ``app`` (a Starlette or FastAPI app) leave its requests to the distro's middleware."""
    fastapi = sys.modules.get("fastapi")
    if fastapi is not None and isinstance(app, fastapi.FastAPI) and _has_native_telemetry(app):
        TURN_OFF(app)
