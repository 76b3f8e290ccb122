"""``otel-distro doctor``: exit 0 when all is well, 1 with each problem named."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from otel_distro import doctor
from tests.conftest import BIN, ROOT, free_port, telemetry_env


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "otel-distro"), "doctor", *args], env=env,
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def _problems(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stdout.splitlines() if "[PROBLEM]" in line]


def test_clean_environment_passes_and_the_probe_span_arrives(receiver) -> None:
    done = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop"))
    assert done.returncode == 0, done.stdout
    assert "No problems found." in done.stdout
    assert "OTEL_SERVICE_NAME" in done.stdout and "shop  (environment)" in done.stdout
    assert [s.name for s in receiver.spans()] == ["otel-distro doctor probe"]


def test_unreachable_otlp_endpoint_is_a_problem() -> None:
    done = _doctor(telemetry_env(f"http://127.0.0.1:{free_port()}", OTEL_SERVICE_NAME="shop"),
                   "--probe-timeout", "1")
    assert done.returncode == 1
    (problem,) = _problems(done)
    assert "otlp endpoint" in problem and "could not be delivered" in problem


def test_invalid_variable_and_missing_service_name_are_named(receiver) -> None:
    done = _doctor(telemetry_env(receiver.endpoint, OTEL_TRACES_SAMPLER="sometimes"))
    assert done.returncode == 1
    problems = "\n".join(_problems(done))
    assert "OTEL_TRACES_SAMPLER='sometimes' is invalid" in problems
    assert "OTEL_SERVICE_NAME is not set" in problems
    assert len(_problems(done)) == 2


def test_taken_prometheus_port_is_a_problem(receiver) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop",
                                     OTEL_METRICS_EXPORTER="otlp,prometheus",
                                     OTEL_EXPORTER_PROMETHEUS_PORT=str(port)))
    assert done.returncode == 1
    (problem,) = _problems(done)
    assert f"127.0.0.1:{port} is already taken" in problem


def test_logging_handlers_installed_twice_are_found(receiver) -> None:
    done = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop"),
                   "--app", "tests.apps.double_logging")
    assert done.returncode == 1
    (problem,) = _problems(done)
    assert "2 handlers writing to the same stream" in problem


def test_json_output_masks_secrets(receiver) -> None:
    done = _doctor(telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop",
                                 OTEL_EXPORTER_OTLP_HEADERS="api-key=supersecret"), "--json")
    report = json.loads(done.stdout)
    assert report["ok"] is True and done.returncode == 0
    rows = {r["variable"]: r for r in report["configuration"]}
    assert rows["OTEL_EXPORTER_OTLP_HEADERS"]["value"] == "****"
    assert "supersecret" not in done.stdout
    assert rows["OTEL_SERVICE_NAME"] == {"variable": "OTEL_SERVICE_NAME", "value": "shop",
                                         "source": "environment"}


@pytest.mark.parametrize("installed,expected", [
    ({"flask"}, ["flask is installed but opentelemetry-instrumentation-flask is not"]),
    ({"flask", "opentelemetry-instrumentation-flask"}, []),
    ({"jinja2"}, []),  # a helper library, not a service boundary
])
def test_missing_instrumentation_is_named(installed: set[str], expected: list[str]) -> None:
    findings = list(doctor.check_instrumentations(installed=lambda name: name in installed))
    problems = [f.message.split(":")[0] for f in findings if not f.ok]
    assert problems == expected


def _refusing_instrumentation(site: Path) -> None:
    """An installed instrumentation whose ``instruments`` range excludes the installed pytest (as the contrib
    SQLAlchemy instrumentation excludes SQLAlchemy 2.1)."""
    dist = site / "otel_fake_instrumentation-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: otel-fake-instrumentation\nVersion: 1.0\n"
                                   "Provides-Extra: instruments\nRequires-Dist: pytest<1; extra == \"instruments\"\n")
    (dist / "entry_points.txt").write_text("[opentelemetry_instrumentor]\nfakelib = otel_fake:Instrumentor\n")


@pytest.mark.timeout(600)
def test_an_instrumentation_refusing_the_installed_version_is_named_by_doctor_and_the_service(
        receiver, tmp_path: Path) -> None:
    _refusing_instrumentation(tmp_path)
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="shop")
    env["PYTHONPATH"] = f"{env['PYTHONPATH']}:{tmp_path}"
    done = _doctor(env)
    assert done.returncode == 1
    (problem,) = [line for line in _problems(done) if "fakelib" in line]
    assert 'only instruments "pytest<1' in problem and "fails to load" in problem
    service = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, "-c", "print('served')"],
                             env={**env, "OTEL_DISTRO_LOG_FORMAT": "json"}, capture_output=True, text=True,
                             timeout=300, cwd=ROOT)
    assert service.returncode == 0 and "served" in service.stdout
    refusals = [json.loads(line) for line in service.stderr.splitlines()
                if line.startswith("{") and "fakelib" in line]
    assert refusals and refusals[0]["level"] == "ERROR"
