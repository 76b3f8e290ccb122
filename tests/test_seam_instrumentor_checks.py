"""The deferred requirement check seam: opentelemetry-instrument's loader passes an instrumentation whose library is
not imported yet without reading its metadata; the check is made on the first import; when the seam fails, the
loader's own check answers."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import pytest
from opentelemetry.instrumentation.auto_instrumentation import _load
from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

from otel_distro._sdk_private import instrumentor_checks as seam
from tests.conftest import fresh_guards


def _distribution(name: str):
    (entry_point,) = entry_points(group="opentelemetry_instrumentor", name=name)
    return entry_point.dist


@pytest.fixture
def loader_check(monkeypatch: pytest.MonkeyPatch) -> list:
    """The loader's check, counting its calls; the seam installed in front of it for this test only."""
    calls: list = []

    def counted(dist):
        calls.append(dist)
        return get_dist_dependency_conflicts(dist)

    monkeypatch.setattr(_load, "get_dist_dependency_conflicts", counted)
    monkeypatch.setattr(seam, "_deferred", set())
    monkeypatch.setattr(seam, "_checked", {})
    fresh_guards(monkeypatch, seam, "GUARD")
    seam.defer_unimported_checks()
    return calls


def test_an_instrumentation_of_a_library_not_imported_passes_unread_and_is_checked_on_first_import(
        loader_check, monkeypatch: pytest.MonkeyPatch) -> None:
    flask = _distribution("flask")
    monkeypatch.delitem(sys.modules, "flask", raising=False)  # put back after the test if another test imported it
    assert _load.get_dist_dependency_conflicts(flask) is None
    assert loader_check == []  # nothing read at start-up
    assert seam.deferred_conflict(flask) is None  # checked now: Flask 3 is admitted
    assert seam._checked == {flask._normalized_name: None}


def test_an_imported_library_or_an_instrumentation_the_registry_does_not_know_is_checked_at_once(
        loader_check) -> None:
    import sqlalchemy  # noqa: F401 - imported: checked as the loader would

    sqlalchemy_dist = _distribution("sqlalchemy")
    assert _load.get_dist_dependency_conflicts(sqlalchemy_dist) is None
    logging_dist = _distribution("logging")  # not in the registry (the configurator's own)
    _load.get_dist_dependency_conflicts(logging_dist)
    assert loader_check == [sqlalchemy_dist, logging_dist]
    assert seam.deferred_conflict(sqlalchemy_dist) is None and seam._checked == {}


def test_when_the_seam_fails_the_loaders_own_check_answers(loader_check, production_errors) -> None:
    class Unnamed:
        """A distribution without the directory-derived name the seam reads."""

        requires = None

    unnamed = Unnamed()
    assert _load.get_dist_dependency_conflicts(unnamed) is None
    assert loader_check == [unnamed]
    assert not seam.GUARD.active
