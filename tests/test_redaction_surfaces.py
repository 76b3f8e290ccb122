"""Secrets outside the OTLP pipeline: the health route's failure messages, ``otel-distro doctor``, the Prometheus
endpoint. Each from a real process."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request

import pytest

from tests.conftest import BIN, free_port, telemetry_env

pytestmark = pytest.mark.integration

SECRETS = ("S3cretPw9", "Tok3nValue9", "S3ss10nValue", "jane.doe", "abcdefghijklmnop123", "Hunter2Pw")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def surfaces(receiver, start_service):
    port, metrics_port = free_port(), free_port()
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="surfaces", OTEL_METRICS_EXPORTER="prometheus",
                        OTEL_EXPORTER_PROMETHEUS_HOST="127.0.0.1", OTEL_EXPORTER_PROMETHEUS_PORT=str(metrics_port),
                        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,db.password=Hunter2Pw,"
                                                 "db.url=postgres://app:S3cretPw9@db.internal/shop")
    service = start_service([str(BIN / "opentelemetry-instrument"), str(BIN / "uvicorn"),
                             "tests.apps.secret_surfaces_app:app", "--host", "127.0.0.1", "--port", str(port)], env)
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    return base, f"http://127.0.0.1:{metrics_port}/metrics"


def test_a_failing_health_check_does_not_show_the_password_it_quotes(surfaces) -> None:
    base, _ = surfaces
    status, body = _get(base + "/health/ready")
    assert status == 503
    message = json.loads(body)["checks"]["database"]["message"]
    assert message == ("ConnectionError: could not connect to postgres://app:[REDACTED]@db.internal:5432/shop "
                       "(token=[REDACTED])")


def test_the_prometheus_endpoint_shows_no_secret_in_target_info_or_points(surfaces) -> None:
    base, scrape = surfaces
    assert _get(base + "/login")[0] == 200
    status, text = _get(scrape)
    assert status == 200
    target_info = [line for line in text.splitlines() if line.startswith("target_info{")]
    logins = [line for line in text.splitlines() if line.startswith("app_logins")]
    assert target_info and logins, text
    assert 'deployment_environment="prod"' in target_info[0] and 'route="/login"' in logins[0]
    assert 'db_password="[REDACTED]"' in target_info[0] and 'session_id="[REDACTED]"' in logins[0]
    assert [secret for secret in SECRETS if secret in text] == []


@pytest.mark.parametrize("as_json", [False, True])
def test_doctor_masks_the_endpoints_password_and_secret_resource_attributes(as_json: bool) -> None:
    env = telemetry_env(f"http://user:S3cretPw9@127.0.0.1:{free_port()}",
                        OTEL_RESOURCE_ATTRIBUTES="deployment.environment=prod,db.password=Hunter2Pw,"
                                                 "api.token=Tok3nValue9")
    done = subprocess.run([str(BIN / "otel-distro"), "doctor", "--probe-timeout", "1",
                           *(["--json"] if as_json else [])],
                          env=env, capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in done.stdout and "deployment.environment=prod" in done.stdout
    assert [secret for secret in SECRETS if secret in output] == []
    assert output.count("user:[REDACTED]@127.0.0.1") >= 2  # the configuration row and the probe's finding
    if as_json:
        rows = {row["variable"]: row["value"] for row in json.loads(done.stdout)["configuration"]}
        assert rows["OTEL_RESOURCE_ATTRIBUTES"] == (
            "deployment.environment=prod,db.password=[REDACTED],api.token=[REDACTED]")
