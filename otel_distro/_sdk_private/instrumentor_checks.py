"""Seam: ``opentelemetry-instrument``'s requirement check of an instrumentation, deferred to the first import of
its library.

Tested with opentelemetry-instrumentation 0.66b0. Before it offers an installed instrumentation to the distro, the
loader (``auto_instrumentation._load._load_instrumentors``) checks the instrumentation's requirements against the
installed library versions, parsing the metadata of both: ~0.6 ms of CPU per instrumentation, ~8 ms with the
``all`` extra, for libraries the application may never import (the distro applies an instrumentation on its
library's first import). The loader calls ``get_dist_dependency_conflicts`` through its module's globals, and the
distro is configured before the loader runs: the distro puts a check there that passes, without reading anything,
an instrumentation whose libraries (as the integration registry names them) are not imported yet, and makes the
real check on the first import, before instrumenting (``distro.py``). The distribution is named by its directory
(``PathDistribution._normalized_name``), not by its metadata, whose parsing is the cost saved.

Public path: the loader's own check, at start-up.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from otel_distro._sdk_private import FastPath
from otel_distro.integrations import registry

Check = Callable[[Any], Any]


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _modules_by_distribution() -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for integration in registry.INTEGRATIONS:
        if integration.modules:
            key = _normalized(integration.instrumentation)
            found[key] = found.get(key, ()) + integration.modules
    return found


_MODULES = _modules_by_distribution()
_deferred: set[str] = set()  # distributions whose check waits for the first import
_checked: dict[str, Any] = {}  # their check once made (one distribution may serve several entry points)


def _defer_unimported(check: Check, dist: Any) -> Any:
    name = dist._normalized_name
    modules = _MODULES.get(name)
    if modules is None or any(module in sys.modules for module in modules):
        return check(dist)
    _deferred.add(name)
    return None


def _check_now(check: Check, dist: Any) -> Any:
    return check(dist)


def new_guards() -> tuple[FastPath[Any]]:
    return (FastPath("instrumentor_checks", _defer_unimported, _check_now),)


(GUARD,) = new_guards()
_INSTALLED = "_otel_distro_defers"


def defer_unimported_checks() -> None:
    """Put the deferring check in ``opentelemetry-instrument``'s loader (before it runs; once)."""
    try:
        from opentelemetry.instrumentation.auto_instrumentation import _load
    except ImportError:
        return
    current = getattr(_load, "get_dist_dependency_conflicts", None)
    if current is None or getattr(current, _INSTALLED, False):
        return
    if not GUARD.probe(lambda: "get_dist_dependency_conflicts" in _load._load_instrumentors.__code__.co_names):
        return

    def deferring(dist: Any) -> Any:
        return GUARD(current, dist)

    setattr(deferring, _INSTALLED, True)
    _load.get_dist_dependency_conflicts = deferring


def deferred_conflict(dist: Any) -> Any:
    """The check the loader deferred for ``dist``, made now: its conflict, or None (none, or not deferred)."""
    name = getattr(dist, "_normalized_name", None)
    if name not in _deferred:
        return None
    if name not in _checked:
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

        _checked[name] = get_dist_dependency_conflicts(dist)
    return _checked[name]
