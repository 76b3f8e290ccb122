"""Bad redaction configuration: one clear line per invalid pattern, the rest kept; strict mode stops."""

from __future__ import annotations

import subprocess
import sys

import pytest

from otel_distro import redaction
from otel_distro.settings import load
from tests.conftest import BIN, telemetry_env


def test_an_invalid_pattern_is_named_skipped_and_the_others_kept(capsys: pytest.CaptureFixture) -> None:
    loaded = load({"OTEL_DISTRO_REDACT_PATTERNS": r"ORD-\d{6},*oops,(?i)internal-\w+"})
    assert loaded.redact_patterns == (r"ORD-\d{6}", r"(?i)internal-\w+")
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["otel-distro: OTEL_DISTRO_REDACT_PATTERNS: pattern '*oops' is not a valid regular "
                     "expression (nothing to repeat at position 0); skipped, the other patterns apply"]
    rules = redaction.from_settings(loaded)
    assert rules.text("ORD-123456 internal-x") == "[REDACTED] [REDACTED]"


def test_each_invalid_pattern_gets_its_own_line(capsys: pytest.CaptureFixture) -> None:
    loaded = load({"OTEL_DISTRO_REDACT_PATTERNS": "a)b,*x"})
    assert loaded.redact_patterns == ()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "'a)b'" in lines[0] and "'*x'" in lines[1]


def test_strict_mode_refuses_an_invalid_pattern(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stopped:
        load({"OTEL_DISTRO_STRICT": "true", "OTEL_DISTRO_REDACT_PATTERNS": "ok,(bad"})
    assert stopped.value.code == 2
    assert "'(bad' is not a valid regular expression" in capsys.readouterr().err


def test_strict_mode_stops_an_instrumented_process_on_a_bad_pattern() -> None:
    env = telemetry_env("http://127.0.0.1:9", OTEL_DISTRO_STRICT="true", OTEL_DISTRO_REDACT_PATTERNS="(bad",
                        OTEL_SERVICE_NAME="strict")
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", "print('app ran')"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "app ran" not in done.stdout
    assert done.stderr.count("'(bad' is not a valid regular expression") == 1


@pytest.mark.parametrize(("env", "value"), [("OTEL_DISTRO_REDACT", "partly"), ("OTEL_DISTRO_REDACT_EMAILS", "drop"),
                                            ("OTEL_DISTRO_LOG_FORMAT", "yaml")])
def test_other_bad_values_fall_back_safely(env: str, value: str, capsys: pytest.CaptureFixture) -> None:
    loaded = load({env: value})
    assert (loaded.redact, loaded.redact_emails, loaded.log_format) == (True, "mask", "off")
    assert f"{env}={value!r} is invalid" in capsys.readouterr().err


def test_commas_inside_groups_do_not_split_patterns() -> None:
    assert load({"OTEL_DISTRO_REDACT_PATTERNS": r"\d{3,4}x,[a,b]y,c\,d"}).redact_patterns == (
        r"\d{3,4}x", "[a,b]y", r"c\,d")
