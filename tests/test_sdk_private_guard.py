"""The guard every private fast path runs behind: a failure falls back to the public path for good, reported once."""

import logging

import pytest

from otel_distro._sdk_private import FastPath


def _broken(value: int) -> int:
    raise AttributeError("'TracerProvider' object has no attribute '_active_span_processor'")


def test_a_failing_fast_path_answers_through_the_public_path_and_stays_retired(production_errors, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    calls: list[int] = []
    guard = FastPath("test.seam", _broken, lambda value: calls.append(value) or value * 2)
    assert [guard(1), guard(2), guard(3)] == [2, 4, 6]
    assert calls == [1, 2, 3]
    assert not guard.active
    warnings = [r.getMessage() for r in caplog.records if "test.seam" in r.getMessage()]
    assert len(warnings) == 1 and "public SDK path" in warnings[0]


def test_a_working_fast_path_is_used() -> None:
    guard = FastPath("test.fast", lambda value: value + 1, lambda value: pytest.fail("public path taken"))
    assert guard(1) == 2 and guard.active


def test_a_failed_probe_keeps_the_public_path(production_errors) -> None:
    guard = FastPath("test.probe", lambda: "fast", lambda: "public")
    assert guard.probe(lambda: False) is False
    assert guard() == "public"


def test_under_our_tests_a_fast_path_failure_raises() -> None:
    guard = FastPath("test.raise", _broken, lambda value: value)
    with pytest.raises(AttributeError):
        guard(1)
