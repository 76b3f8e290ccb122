"""promtool on the shipped Prometheus config, rules and rule unit tests."""

from __future__ import annotations

import subprocess

import pytest

from tests.collector.conftest import PROM_DIR, tool, yaml

RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
TEST_FILES = sorted((PROM_DIR / "tests").glob("*.yml"))
SEVERITIES = {"critical", "error", "warning", "info"}


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("promtool"), *args], capture_output=True, text=True, timeout=120, cwd=PROM_DIR)


def alerts() -> list[dict]:
    return [rule for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"] if "alert" in rule]


def test_check_config() -> None:
    result = run("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_rules() -> None:
    result = run("check", "rules", *[str(p) for p in RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    result = run("test", "rules", *[str(p) for p in TEST_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: f"{a['alert']}-{a['labels']['severity']}")
def test_alert_has_severity_and_annotations(alert: dict) -> None:
    assert alert["labels"].get("severity") in SEVERITIES
    for key in ("summary", "description", "runbook_url"):
        assert alert.get("annotations", {}).get(key), f"{alert['alert']} lacks annotation {key}"
    assert alert["annotations"]["runbook_url"].startswith("https://")


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    firing: dict[str, set[str]] = {}
    silent: set[str] = set()
    for path in TEST_FILES:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                expected = check.get("exp_alerts") or []
                if expected:
                    for exp in expected:
                        assert exp.get("exp_annotations"), f"{path.name}: {check['alertname']} without exp_annotations"
                        firing.setdefault(check["alertname"], set()).add(exp["exp_labels"]["severity"])
                else:
                    silent.add(check["alertname"])
    for alert in alerts():
        name, severity = alert["alert"], alert["labels"]["severity"]
        assert severity in firing.get(name, set()), f"no firing case for {name} ({severity})"
        assert name in silent, f"no silent case for {name}"
