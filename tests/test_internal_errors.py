"""The one internal-error policy: once in production, raised under our own tests."""

import logging

import pytest

from otel_distro._internal_errors import OnceWarnings, internal_error_counts, report_internal_error


def test_under_the_projects_tests_a_reported_error_raises() -> None:
    with pytest.raises(ValueError, match="boom"):
        try:
            raise ValueError("boom")
        except ValueError as err:
            report_internal_error("test.raise", "a test step failed", err)


def test_in_production_an_error_is_logged_once_and_counted(production_errors, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    for _ in range(3):
        try:
            raise RuntimeError("lost connection")
        except RuntimeError as err:
            report_internal_error("test.once", "sending failed, the batch was dropped", err)
    lines = [r.getMessage() for r in caplog.records if r.name == "otel_distro"]
    assert lines == ["otel-distro: sending failed, the batch was dropped: RuntimeError: lost connection "
                     "(reported once)"]
    assert internal_error_counts()["test.once"] == 3


def test_a_warning_about_the_users_input_is_said_once_per_key_and_never_raises(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="otel_distro")
    warnings, other_owner = OnceWarnings(), OnceWarnings()
    said = [warnings.warn(key, "otel-distro: no price for %s", key) for key in ("m1", "m1", "m2", "m1")]
    said.append(other_owner.warn("m1", "otel-distro: no price for %s", "m1"))
    assert said == [True, False, True, False, True]
    assert [r.getMessage() for r in caplog.records] == ["otel-distro: no price for m1", "otel-distro: no price for m2",
                                                        "otel-distro: no price for m1"]
