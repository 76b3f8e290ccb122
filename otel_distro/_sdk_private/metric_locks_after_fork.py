"""Seam: a forked child gets unlocked copies of the SDK's metric collection locks.

Tested with opentelemetry-sdk 1.45.0 and 1.45.1. The SDK renews the provider's own locks after fork, not those of
its periodic readers' export, measurement consumer, reader storages, view matches and aggregations. A fork that
lands while the parent's reader thread collects or exports (billiard forks pool children from a thread, at any
moment) leaves the child with a lock held by a thread it does not have: its next collect, and so its flush, hangs.
Seen as a Celery prefork child "not fully flushed" about 1 run in 12 under load; stack dumps showed both locks.

Private parts relied on: ``MeterProvider._measurement_consumer`` (``_lock``, ``_reader_storages``),
``_metric_readers`` (``_export_lock``), each storage's ``_lock`` and ``_instrument_view_instrument_matches``, each
match's ``_lock`` and ``_attributes_aggregation``, each aggregation's ``_lock``. Probed when a provider is built;
there is no public way to renew them, so when the probe or a renewal fails the child keeps the SDK's behaviour
(the rare hang above is possible again) and that is reported once, never silently.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

from otel_distro._sdk_private import FastPath

_RLOCK_TYPE = type(threading.RLock())


def _fresh(lock: Any) -> Any:
    """A new, unlocked lock of the same kind."""
    return threading.RLock() if isinstance(lock, _RLOCK_TYPE) else threading.Lock()


def _renew(provider: Any) -> None:
    consumer = provider._measurement_consumer
    for reader in provider._metric_readers:
        if hasattr(reader, "_export_lock"):  # periodic readers: held while the parent's reader exported
            reader._export_lock = _fresh(reader._export_lock)
    consumer._lock = _fresh(consumer._lock)
    for storage in consumer._reader_storages.values():
        storage._lock = _fresh(storage._lock)
        for matches in storage._instrument_view_instrument_matches.values():
            for match in matches:
                match._lock = _fresh(match._lock)
                for aggregation in match._attributes_aggregation.values():
                    aggregation._lock = _fresh(aggregation._lock)


def _keep_the_sdks_locks(provider: Any) -> None:
    """The public path: the SDK renews only the provider's own locks."""


def _layout_as_tested(provider: Any) -> bool:
    consumer = provider._measurement_consumer
    return hasattr(consumer, "_lock") and isinstance(consumer._reader_storages, dict) \
        and isinstance(list(provider._metric_readers), list)


def new_guards() -> tuple[FastPath[None]]:
    return (FastPath("metric_locks_after_fork", _renew, _keep_the_sdks_locks),)


(RENEW,) = new_guards()


def renew_after_fork(provider: Any) -> None:
    """In every forked child, renew ``provider``'s collection locks (probed now, once)."""
    if not hasattr(os, "register_at_fork") or not RENEW.probe(lambda: _layout_as_tested(provider)):
        return
    ref = weakref.ref(provider)

    def renew() -> None:
        owner = ref()
        if owner is not None:
            RENEW(owner)

    os.register_at_fork(after_in_child=renew)
