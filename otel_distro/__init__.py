"""otel-distro: an OpenTelemetry distribution for Python services.

Started by ``opentelemetry-instrument`` (entry points ``otel_distro``) or in
code with :func:`configure`; :func:`shutdown` flushes what is pending.
"""

from otel_distro.configurator import Telemetry, configure, shutdown
from otel_distro.version import __version__

__all__ = ["Telemetry", "__version__", "configure", "shutdown"]
