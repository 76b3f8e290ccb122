"""``otel-distro doctor`` shows every integration of the registry with its state: not installed, without its
instrumentation, refused by it (and why), instrumented, or waiting for the library's first import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otel_distro.integrations import registry
from tests.conftest import BIN, ROOT, telemetry_env

pytestmark = pytest.mark.integration

# A SQLAlchemy the contrib instrumentation (0.66: "sqlalchemy >= 1.0.0, < 2.1.0") refuses.
REFUSED_SQLALCHEMY = "sqlalchemy>=2.1,<2.2"


@pytest.fixture
def refused_sqlalchemy(tmp_path: Path) -> Path:
    """A directory holding that SQLAlchemy, to put first on PYTHONPATH."""
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                                REFUSED_SQLALCHEMY], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    return site


def _doctor(env: dict[str, str], *args: str, hook: bool = False) -> tuple[subprocess.CompletedProcess, dict]:
    argv = [str(BIN / "otel-distro"), "doctor", "--json", *args]
    if hook:
        argv = [str(BIN / "opentelemetry-instrument"), *argv]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    return done, json.loads(done.stdout)


def _states(report: dict) -> dict[str, dict]:
    return {row["name"]: row for row in report["integrations"]}


def test_every_registry_integration_is_shown_as_a_service_would_get_it(receiver) -> None:
    done, report = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert [row["name"] for row in report["integrations"]] == [i.name for i in registry.INTEGRATIONS]
    assert report["integrations_observed"] is False  # not under opentelemetry-instrument
    states = _states(report)
    assert states["fastapi"]["state"] == "waiting for first import"
    assert states["fastapi"]["library"].startswith("fastapi ")
    assert states["fastapi"]["instrumentation"].startswith("opentelemetry-instrumentation-fastapi 0.")
    assert states["pymongo"]["state"] == "not installed"
    text = subprocess.run([str(BIN / "otel-distro"), "doctor"], env=telemetry_env(receiver.endpoint,
                          OTEL_SERVICE_NAME="shop"), capture_output=True, text=True, timeout=300, cwd=ROOT).stdout
    assert "  sqlalchemy: waiting for first import (sqlalchemy 2." in text
    assert "not installed: " in text and "pymongo" in text.split("not installed: ", 1)[1].splitlines()[0]


def test_under_opentelemetry_instrument_the_outcomes_of_that_process_are_shown(receiver) -> None:
    done, report = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop",
                                         OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="redis"),
                           "--app", "sqlalchemy", hook=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["integrations_observed"] is True
    states = _states(report)
    assert states["sqlalchemy"]["state"] == "instrumented"  # imported by --app: applied on that import
    assert states["flask"]["state"] == "waiting for first import"
    assert states["flask"]["detail"] == "applied on the first import of flask"
    assert states["redis"] == {**states["redis"], "state": "disabled",
                               "detail": "named in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"}


@pytest.mark.timeout(600)
def test_a_library_version_its_instrumentation_refuses_is_shown_with_the_reason(receiver, refused_sqlalchemy) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop")
    env["PYTHONPATH"] = f"{refused_sqlalchemy}:{env['PYTHONPATH']}"  # found before the venv's SQLAlchemy 2.0
    for hook in (False, True):
        done, report = _doctor(env, "--app", "sqlalchemy", hook=hook)
        assert done.returncode == 1, done.stdout  # a refusal is a problem
        sqlalchemy = _states(report)["sqlalchemy"]
        assert sqlalchemy["state"] == "refused", (hook, sqlalchemy)
        assert sqlalchemy["library"].startswith("sqlalchemy 2.1.")
        assert sqlalchemy["detail"].startswith('it only instruments "sqlalchemy<2.1.0,>=1.0.0')
        assert f'the installed "{sqlalchemy["library"]}" falls outside that range' in sqlalchemy["detail"]
        assert report["integrations_observed"] is hook
    # the service that imported it says so too, on stderr
    assert "instrumentation 'sqlalchemy' not applied: it only instruments \"sqlalchemy<2.1.0" in done.stderr


@pytest.mark.timeout(600)
def test_a_refused_version_is_checked_and_said_on_the_first_import_only(receiver, refused_sqlalchemy) -> None:
    env = {**telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop"), "OTEL_DISTRO_LOG_FORMAT": "json"}
    env["PYTHONPATH"] = f"{refused_sqlalchemy}:{env['PYTHONPATH']}"

    def service(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", code], env=env,
                              capture_output=True, text=True, timeout=300, cwd=ROOT)

    unused = service("print('served')")
    assert unused.returncode == 0 and "served" in unused.stdout
    assert "sqlalchemy" not in unused.stderr  # never imported: its instrumentation's metadata is never read
    used = service("import sqlalchemy\n"
                   "from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor\n"
                   "print('instrumented' if SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry else 'left')")
    assert used.returncode == 0 and used.stdout.split() == ["left"]
    refusals = [json.loads(line) for line in used.stderr.splitlines()
                if line.startswith("{") and "instrumentation 'sqlalchemy' not applied" in line]
    assert len(refusals) == 1 and refusals[0]["level"] == "ERROR"
