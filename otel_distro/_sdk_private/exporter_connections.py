"""Seam: a forked child closes its copies of the OTLP/HTTP exporters' pooled connections.

Tested with opentelemetry-exporter-otlp-proto-http 1.45.0 (urllib3 transport) and 1.45.1 (requests transport),
exporter-http-transport 0.66b0/0.66b1. An exporter keeps keep-alive connections in a pool; a child of fork()
inherits it, and its next export writes on the very TCP connection the parent is using: the two processes'
requests interleave (the receiver sees corrupt protobuf) and one may read the other's response. The child closes
its copies (close, not shutdown: the parent's connection stays up); the pool opens new ones on the next export.
Upstream: opentelemetry-python PR #4995 (open).

Private part relied on: ``exporter._client._transport.close()``. There is no public way to do this: when the probe
or a close fails, the child keeps the inherited pool (the interleaving above is possible again), reported once.
"""

from __future__ import annotations

from typing import Any

from otel_distro._sdk_private import FastPath


def _transport(exporter: Any) -> Any:
    close = exporter._client._transport.close
    if not callable(close):
        raise TypeError(f"{type(exporter).__name__}._client._transport.close is not callable")
    return close


def _close(exporters: list[Any]) -> None:
    for exporter in exporters:
        _transport(exporter)()  # the pool stays usable: new connections on the next export


def _keep_inherited(exporters: list[Any]) -> None:
    """The public path: nothing closes them."""


def new_guards() -> tuple[FastPath[None]]:
    return (FastPath("exporter_connections", _close, _keep_inherited),)


(CLOSE,) = new_guards()


def probe(exporter: Any) -> bool:
    """Whether this exporter's connections can be closed after fork (checked once per exporter kind)."""
    return CLOSE.probe(lambda: _transport(exporter))
