"""What became of each integration the registry knows: ``otel-distro doctor`` shows it.

Per integration: is its library installed, is its instrumentation installed, does that instrumentation refuse the
installed library version (the check ``opentelemetry-instrument`` makes before it offers an instrumentation to the
distro, which therefore never sees a refusal), and what the distro did with it in this process
(``registry.outcomes``): instrumented, failed, or waiting for the application's first import of the library.

In a process the distro did not start in (a plain ``otel-distro doctor``), the last part is what a service
started under ``opentelemetry-instrument`` gets at start-up: every admitted instrumentation waits for the first
import of its library. ``opentelemetry-instrument otel-distro doctor --app MODULE`` shows the outcomes themselves.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import Distribution, PackageNotFoundError, entry_points, version
from typing import Any

from otel_distro.integrations import registry

NOT_INSTALLED = "not installed"
NO_INSTRUMENTATION = "no instrumentation"
REFUSED = "refused"
DISABLED = "disabled"
INSTRUMENTED = "instrumented"
FAILED = "failed"
WAITING = "waiting for first import"
NOT_OFFERED = "not loaded"


@dataclass(frozen=True)
class IntegrationState:
    name: str
    state: str
    library: str  # "name version" of the installed library distribution, or ""
    instrumentation: str  # "name version" of the installed instrumentation, or its name when absent
    extra: str | None
    detail: str  # why (refused, failed) or what to do (no instrumentation)


def installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _instrumentor_distributions() -> dict[str, Distribution]:
    return {entry_point.name: entry_point.dist for entry_point in entry_points(group="opentelemetry_instrumentor")
            if entry_point.dist is not None}


def refusal(name: str) -> str | None:
    """Why ``opentelemetry-instrument`` refuses the instrumentation named ``name`` (the installed library version is
    outside what it instruments), or None."""
    from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

    distribution = _instrumentor_distributions().get(name)
    return describe_conflict(get_dist_dependency_conflicts(distribution)) if distribution is not None else None


def describe_conflict(conflict: Any) -> str | None:
    """What a dependency conflict of an instrumentation says, when it is a refused version; None when there is no
    conflict or the library is not installed at all (nothing to refuse)."""
    if conflict is None:
        return None
    if conflict.found:
        return (f'it only instruments "{conflict.required}", but the installed "{conflict.found}" falls outside '
                "that range")
    found_any = getattr(conflict, "found_any", None)
    if found_any:
        return (f'it only instruments one of "{", ".join(map(str, conflict.required_any))}", but the installed '
                f'"{", ".join(map(str, found_any))}" fall outside that range')
    return None


def _library(integration: registry.Integration, found: Callable[[str], str | None]) -> str:
    for library in integration.libraries:
        library_version = found(library)
        if library_version is not None:
            return f"{library} {library_version}"
    return ""


def _loaded_state(integration: registry.Integration, outcomes: registry.LoadOutcomes,
                  disabled: frozenset[str]) -> tuple[str, str]:
    """What the distro did with an admitted instrumentation (observed, or what a service gets at start-up)."""
    name = integration.name
    modules = ", ".join(integration.modules)
    if name in disabled:
        return DISABLED, "named in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
    if not outcomes.observed:
        return WAITING, f"applied on the first import of {modules}"
    if name in outcomes.refused:
        return REFUSED, outcomes.refused[name]
    if name in outcomes.failed:
        return FAILED, outcomes.failed[name]
    if name in outcomes.instrumented:
        return INSTRUMENTED, ""
    if name in outcomes.waiting:
        return WAITING, f"applied on the first import of {modules}"
    return NOT_OFFERED, "opentelemetry-instrument did not offer it to the distro in this process"


def states(outcomes: registry.LoadOutcomes | None = None, disabled: Iterable[str] = (),
           found: Callable[[str], str | None] = installed_version,
           refused: Callable[[str], str | None] = refusal) -> list[IntegrationState]:
    """Every integration of the registry, in its order, with its state in this environment and process."""
    outcomes = registry.outcomes if outcomes is None else outcomes
    off = frozenset(disabled)
    result = []
    for integration in registry.INTEGRATIONS:
        library = _library(integration, found)
        instrumentation_version = found(integration.instrumentation)
        instrumentation = (f"{integration.instrumentation} {instrumentation_version}"
                           if instrumentation_version else integration.instrumentation)
        if instrumentation_version is None:
            state, detail = ((NOT_INSTALLED, "") if not library else
                             (NO_INSTRUMENTATION, f"its calls are not traced: {_install_hint(integration)}"))
        elif (why := refused(integration.name)) is not None:
            state, detail = REFUSED, why
        elif not library and integration.libraries:
            state, detail = NOT_INSTALLED, ""
        else:
            state, detail = _loaded_state(integration, outcomes, off)
        result.append(IntegrationState(integration.name, state, library, instrumentation, integration.extra, detail))
    return result


def _install_hint(integration: registry.Integration) -> str:
    if integration.extra:
        return f"pip install 'otel-distro[{integration.extra}]'"
    return f"pip install {integration.instrumentation}"
