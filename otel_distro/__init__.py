"""otel-distro: an OpenTelemetry distribution for Python services.

Started by ``opentelemetry-instrument`` (entry points ``otel_distro``) or in
code with :func:`configure`; :func:`shutdown` flushes what is pending.

Importing the package imports no OpenTelemetry module: ``configure``, ``shutdown``
and ``Telemetry`` load the SDK when first used, so the tools that do not need it
(``otel-distro collector check``, ``stack``) start without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from otel_distro.version import __version__

if TYPE_CHECKING:
    from otel_distro.configurator import Telemetry, configure, shutdown

__all__ = ["Telemetry", "__version__", "configure", "shutdown"]

_FROM_CONFIGURATOR = frozenset(("Telemetry", "configure", "shutdown"))


def __getattr__(name: str) -> Any:
    if name in _FROM_CONFIGURATOR:
        from otel_distro import configurator

        return getattr(configurator, name)
    raise AttributeError(f"module 'otel_distro' has no attribute {name!r}")
