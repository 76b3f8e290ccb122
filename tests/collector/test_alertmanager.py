"""amtool on the rendered Alertmanager config: syntax, routing per severity, no literal endpoints."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.collector.conftest import AM_DIR, am_env, render_alertmanager, tool

ROUTES = {
    "critical": "pagerduty,slack",
    "error": "slack",
    "warning": "slack",
    "info": "email",
    "": "webhook",          # no severity
    "page-me": "webhook",   # unknown severity
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("am")
    return render_alertmanager(tmp, am_env(tmp, sink_port=9, smtp_port=25))


def amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([tool("amtool"), *args], capture_output=True, text=True, timeout=60)


def test_check_config(rendered: Path) -> None:
    result = amtool("check-config", str(rendered))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("severity,receivers", ROUTES.items(), ids=lambda v: v or "none")
def test_routes(rendered: Path, severity: str, receivers: str) -> None:
    labels = ["alertname=HTTPErrorRatioHigh", "job=checkout"]
    if severity:
        labels.append(f"severity={severity}")
    result = amtool("config", "routes", "test", f"--config.file={rendered}",
                    f"--verify.receivers={receivers}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_group_by_alertname_and_service_and_inhibitions(rendered: Path) -> None:
    import yaml
    config = yaml.safe_load(rendered.read_text())
    assert config["route"]["group_by"] == ["alertname", "job"]
    inhibit = {(tuple(r["source_matchers"]), tuple(r["target_matchers"])) for r in config["inhibit_rules"]}
    assert (('severity="critical"',), ('severity=~"error|warning"',)) in inhibit
    assert all(r["equal"] == ["alertname", "job"] for r in config["inhibit_rules"])
    assert config["global"]["smtp_require_tls"] is False  # the test renders it false; shipped default true
    for receiver in config["receivers"]:
        for key, configs in receiver.items():
            if key.endswith("_configs"):
                assert all(c.get("send_resolved") is True for c in configs), receiver["name"]


def test_template_has_no_literal_endpoints_or_secrets() -> None:
    template = (AM_DIR / "alertmanager.yml").read_text()
    for line in template.splitlines():
        if line.lstrip().startswith("#"):
            continue
        key = line.split(":", 1)[0].strip().lstrip("- ")
        if key in ("url", "api_url", "pagerduty_url", "smtp_smarthost", "smtp_from", "to",
                   "smtp_auth_username", "routing_key", "service_key", "smtp_auth_password"):
            assert "${" in line, f"literal value in the template: {line.strip()}"
        assert not re.search(r"(routing_key|service_key|smtp_auth_password|api_url):", line), \
            f"secrets must come from *_file: {line.strip()}"
    assert "smtp_require_tls:" in template


def test_render_fails_on_missing_variable(tmp_path: Path) -> None:
    result = subprocess.run(["sh", str(AM_DIR / "render.sh"), str(AM_DIR / "alertmanager.yml"),
                             str(tmp_path / "out.yml")], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "ALERTMANAGER_WEBHOOK_URL is not set" in result.stderr
