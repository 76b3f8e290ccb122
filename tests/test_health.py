"""Health checks through the real routes of a service under opentelemetry-instrument."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.conftest import BIN, free_port, telemetry_env

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _serve(receiver, start_service, tmp_path, server: list[str], port: int) -> tuple[str, object]:
    state = tmp_path / "state"
    state.mkdir()
    service = start_service([str(BIN / "opentelemetry-instrument"), *server],
                            telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="health-app",
                                          HEALTH_STATE_DIR=str(state)))
    base = f"http://127.0.0.1:{port}"
    service.wait_http(base + "/health")
    return base, state


@pytest.fixture
def app(receiver, start_service, tmp_path):
    port = free_port()
    return _serve(receiver, start_service, tmp_path, [str(BIN / "uvicorn"), "tests.apps.health_app:app",
                                                      "--host", "127.0.0.1", "--port", str(port)], port)


def test_all_passing(app) -> None:
    base, _ = app
    assert _get(base + "/health") == (200, {"status": "pass"})
    status, body = _get(base + "/health/ready")
    assert status == 200 and body["status"] == "pass"
    assert set(body["checks"]) == {"database", "cache", "config", "queue", "disk", "slow-upstream"}
    assert all(c["status"] == "pass" and c["duration_ms"] >= 0 for c in body["checks"].values())


def test_failing_critical_check_gives_503(app) -> None:
    base, state = app
    (state / "database-down").touch()
    status, body = _get(base + "/health/ready")
    assert status == 503 and body["status"] == "fail"
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["config"]["status"] == "pass"
    assert _get(base + "/health")[0] == 200  # liveness is not readiness


def test_failing_non_critical_check_warns(app) -> None:
    base, state = app
    (state / "cache-down").touch()
    status, body = _get(base + "/health/ready")
    assert status == 200 and body["status"] == "warn"
    assert body["checks"]["cache"] == {"status": "fail", "critical": False,
                                       "duration_ms": body["checks"]["cache"]["duration_ms"],
                                       "message": "cache unreachable"}


def test_raising_check_is_reported_not_crashed(app) -> None:
    base, state = app
    (state / "config-raises").touch()
    status, body = _get(base + "/health/ready")
    assert status == 503
    assert body["checks"]["config"]["message"] == "RuntimeError: config file unreadable"


@pytest.mark.parametrize("which", ["queue", "disk"])  # async and sync
def test_hanging_check_is_cut_at_its_timeout(app, which: str) -> None:
    base, state = app
    (state / f"{which}-hangs").touch()
    status, body = _get(base + "/health/ready")
    assert status == 503
    assert body["checks"][which]["message"] == "timed out after 0.3s"
    assert body["checks"][which]["duration_ms"] < 2000  # cut, not waited out


def test_results_are_cached_for_the_ttl(app) -> None:
    base, _ = app
    messages = {_get(base + "/health/ready")[1]["checks"]["slow-upstream"]["message"]
                for _ in range(3)}
    assert messages == {"call 1"}


def test_gauge_and_duration_per_check(app, receiver) -> None:
    base, state = app
    _get(base + "/health/ready")
    (state / "database-down").touch()
    _get(base + "/health/ready")

    def latest_status() -> dict[str, float]:
        gauges = receiver.metric("health.check.status")
        return {p.attributes["health.check.name"]: p.value for p in gauges[-1].points} if gauges else {}

    values = receiver.wait_for(lambda: latest_status().get("database") == 0 and latest_status(),
                               what="the database gauge at 0")
    assert values["config"] == 1 and values["cache"] == 1
    durations = receiver.wait_for(lambda: receiver.metric("health.check.duration"), what="durations")
    names = {p.attributes["health.check.name"] for p in durations[-1].points}
    assert "database" in names
    assert durations[-1].unit == "s"


@pytest.fixture
def flask_app(receiver, start_service, tmp_path):
    port = free_port()
    return _serve(receiver, start_service, tmp_path,
                  [str(BIN / "gunicorn"), "tests.apps.health_flask_app:app", "--bind", f"127.0.0.1:{port}",
                   "--workers", "1", "--threads", "4"], port)


def test_flask_app_gets_the_same_routes(flask_app) -> None:
    base, state = flask_app
    assert _get(base + "/health") == (200, {"status": "pass"})
    status, body = _get(base + "/health/ready")
    assert (status, body["status"]) == (200, "pass")
    assert set(body["checks"]) == {"database", "cache", "config", "queue", "disk", "slow-upstream"}
    (state / "cache-down").touch()
    status, body = _get(base + "/health/ready")
    assert (status, body["status"], body["checks"]["cache"]["message"]) == (200, "warn", "cache unreachable")
    (state / "database-down").touch()
    status, body = _get(base + "/health/ready")
    assert (status, body["status"], body["checks"]["database"]["status"]) == (503, "fail", "fail")


def test_flask_hanging_sync_check_is_cut_at_its_timeout(flask_app) -> None:
    base, state = flask_app
    (state / "disk-hangs").touch()
    status, body = _get(base + "/health/ready")
    assert status == 503 and body["checks"]["disk"]["message"] == "timed out after 0.3s"
    assert body["checks"]["disk"]["duration_ms"] < 2000  # cut, not waited out


def test_flask_readiness_sets_the_gauge(flask_app, receiver) -> None:
    base, state = flask_app
    (state / "database-down").touch()
    _get(base + "/health/ready")

    def database_gauge() -> float | None:
        gauges = receiver.metric("health.check.status")
        return {p.attributes["health.check.name"]: p.value for p in gauges[-1].points}.get("database") \
            if gauges else None

    assert receiver.wait_for(lambda: database_gauge() == 0 and "at 0", what="the database gauge at 0")


def test_install_names_what_it_takes() -> None:
    from otel_distro import health

    with pytest.raises(TypeError, match="FastAPI, Starlette or Flask app, not object"):
        health.install(object())
