"""OpenTelemetry logs: the logger provider and the bridge from stdlib ``logging``.

- :mod:`~otel_distro.logs.provider`: the provider, its exporters and batch processors;
- :mod:`~otel_distro.logs.bridge`: the handler on the root logger and its worker thread;
- :mod:`~otel_distro.logs.delivery`: what became of the records, losses counted and reported;
- :mod:`~otel_distro.logs.takeover`: the one bridge of the process and the console it takes over;
- :mod:`~otel_distro.logs.reconfiguration`: the bridge kept through ``basicConfig``/``dictConfig``/``fileConfig``.

The bridge is installed once per process and leaves the application's own handlers, and so its console
output, as they were - unless ``OTEL_DISTRO_LOG_FORMAT`` is json or text: then the bridge also writes the
console lines and the root logger's plain stdout/stderr handlers step aside (put back at shutdown).
"""

from otel_distro.logs.delivery import Losses, report_at_exit
from otel_distro.logs.provider import build, exporters, leading_processors
from otel_distro.logs.takeover import bridge, install_bridge, remove_bridge

__all__ = [
    "Losses",
    "bridge",
    "build",
    "exporters",
    "install_bridge",
    "leading_processors",
    "remove_bridge",
    "report_at_exit",
]
