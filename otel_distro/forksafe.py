"""Exporter connections are per process: a forked child must not reuse its parent's sockets.

After a fork, the child closes its copies of the exporters' pooled connections and opens its own on the next
export (the private part: :mod:`otel_distro._sdk_private.exporter_connections`).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from otel_distro._sdk_private import exporter_connections

_POOLING_EXPORTERS = "opentelemetry.exporter.otlp.proto.http."
_exporters: weakref.WeakSet[Any] = weakref.WeakSet()
_installed = False
_lock = threading.Lock()


def track(exporter: Any) -> Any:
    """Have the exporter's connections dropped in every forked child; returns the exporter.

    Only the OTLP/HTTP exporters pool connections; others (console, file, gRPC: its channel is per process
    already) are returned as they are, without being probed.
    """
    global _installed
    if not type(exporter).__module__.startswith(_POOLING_EXPORTERS) or not exporter_connections.probe(exporter):
        return exporter
    with _lock:
        _exporters.add(exporter)
        if not _installed and hasattr(os, "register_at_fork"):
            _import_lazy_modules()
            os.register_at_fork(after_in_child=_drop_inherited_connections)
            _installed = True
    return exporter


def _import_lazy_modules() -> None:
    # An exporter's first connection makes urllib3 encode the host with the "idna"
    # codec, importing encodings.idna in the exporter's thread. A fork landing during
    # that import leaves the child holding the module's import lock for a thread it
    # does not have: its exports hang. Import it here, before any exporter thread.
    "localhost".encode("idna")


def _drop_inherited_connections() -> None:
    exporter_connections.CLOSE(list(_exporters))
