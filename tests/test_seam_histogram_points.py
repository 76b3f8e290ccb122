"""The direct histogram seam: when it raises mid-request the request is served and every point is counted."""

from __future__ import annotations

import logging

import pytest

from otel_distro._sdk_private import histogram_points as seam
from tests.conftest import fresh_guards
from tests.test_asgi_middleware import Rig


@pytest.fixture
def guards(monkeypatch: pytest.MonkeyPatch) -> tuple:
    return fresh_guards(monkeypatch, seam, "RECORD", "LEARN")


def _changed_point(*args: object) -> None:
    raise TypeError("Measurement.__init__() missing 1 required positional argument: 'instrument'")


def _count(rig: Rig) -> int:
    return sum(p.count for p in rig.points())


def test_direct_recording_failing_mid_request_counts_every_point_through_the_sdk(
        guards, production_errors, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    record, _ = guards
    rig = Rig()
    assert rig.app.points.direct
    assert [rig.request("GET", "/items/1") for _ in range(3)] == [200, 200, 200]  # the 2nd and 3rd: direct
    monkeypatch.setattr(seam, "_Point", _changed_point)
    assert [rig.request("GET", "/items/1") for _ in range(3)] == [200, 200, 200]
    assert _count(rig) == 6
    assert not record.active
    warnings = [r.getMessage() for r in caplog.records if "histogram_points.record" in r.getMessage()]
    assert len(warnings) == 1 and "TypeError" in warnings[0], warnings


def test_learning_a_set_failing_leaves_its_points_to_the_sdk(
        guards, production_errors, monkeypatch: pytest.MonkeyPatch) -> None:
    record, _ = guards

    def renamed(*args: object) -> None:
        raise AttributeError("'_ViewInstrumentMatch' object has no attribute '_attributes_aggregation'")

    learn_again = seam.FastPath("histogram_points.learn", renamed, seam._learn_nothing)
    monkeypatch.setattr(seam, "LEARN", learn_again)
    rig = Rig()
    assert [rig.request("GET", "/items/1") for _ in range(4)] == [200] * 4
    assert _count(rig) == 4
    assert not learn_again.active and record.active
