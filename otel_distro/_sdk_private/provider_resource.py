"""Seam: a forked child's providers are told its new process id.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1, whose tracer, meter and logger providers refresh the resource of
the detectors named in ``OTEL_EXPERIMENTAL_RESOURCE_DETECTORS`` after fork, through their private
``_update_resource(resource)``. The distro detects the process itself (not through that variable), so it calls the
same method with the child's ``process.pid`` and ``process.parent_pid``; each prefork worker is told apart.

No public way exists: when the probe or an update fails, the child reports its parent's pid (reported once).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.resources import Resource

from otel_distro._sdk_private import FastPath


def _update(providers: list[Any], resource: Resource) -> None:
    for provider in providers:
        provider._update_resource(resource)


def _keep_the_parents(providers: list[Any], resource: Resource) -> None:
    """The public path: the providers keep the resource they were built with."""


def new_guards() -> tuple[FastPath[None]]:
    return (FastPath("provider_resource", _update, _keep_the_parents),)


(UPDATE,) = new_guards()


def refresh_process_after_fork(providers: Iterable[Any]) -> None:
    """After a fork, tell each provider its new process id (probed now, once)."""
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    chosen = [p for p in providers if isinstance(p, (TracerProvider, MeterProvider, LoggerProvider))]
    if not hasattr(os, "register_at_fork") or not UPDATE.probe(
            lambda: all(callable(p._update_resource) for p in chosen)):
        return
    refs = [weakref.ref(p) for p in chosen]

    def after_in_child() -> None:
        fresh = Resource({"process.pid": os.getpid(), "process.parent_pid": os.getppid()})
        UPDATE([p for p in (ref() for ref in refs) if p is not None], fresh)

    os.register_at_fork(after_in_child=after_in_child)
