"""Exporter connections are per process: a forked child must not reuse its parent's sockets.

The OTLP/HTTP exporters keep keep-alive connections in a pool (urllib3 in SDK
1.45, a requests.Session in 1.44). A child of fork() inherits the pool, and
its next export writes on the very TCP connection the parent is using: the
two processes' requests interleave (the receiver sees corrupt protobuf) and one
may read the other's response. After a fork, the child closes its copies of
those sockets (close, not shutdown: the parent's connection stays up) and
opens its own on the next export. Upstream: opentelemetry-python PR #4995 (open).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

_exporters: weakref.WeakSet[Any] = weakref.WeakSet()
_installed = False
_lock = threading.Lock()


def track(exporter: Any) -> Any:
    """Have the exporter's connections dropped in every forked child; returns the exporter."""
    global _installed
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
    for exporter in list(_exporters):
        client = getattr(exporter, "_client", None)
        # SDK 1.45: exporter._client._transport (urllib3 or requests); 1.44: exporter._session.
        for holder in (getattr(client, "_transport", None), getattr(exporter, "_session", None)):
            close = getattr(holder, "close", None)
            if callable(close):
                try:
                    close()  # the pools stay usable: new connections on the next export
                except Exception:  # never let telemetry break a fork
                    pass
