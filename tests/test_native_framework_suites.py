"""Good manners with the frameworks' own telemetry, checked by the frameworks' own test suites.

Starlette (>= 1.x) ships an OpenTelemetry middleware and FastAPI (>= 0.142) its own telemetry; their test
suites set both up with their own providers. Run under ``opentelemetry-instrument`` with this distro, every one
of those tests must pass as it does without the distro: the distro steps aside for an app that traces itself.
The suites come from the sdists of the installed versions (the test extra pins them).
"""

from __future__ import annotations

import subprocess
import tarfile
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import BIN, telemetry_env

pytestmark = pytest.mark.integration

# Cases that cannot pass here whatever the distro does, each with its reason.
_NOT_HERE = {
    # Not installed in the test environment (they fail the same way without the distro).
    "trio": "the trio backend is not installed",
    "logfire": "logfire is not installed",
    "sentry": "sentry_sdk is not installed",
    "test_registration_provider_prefers_public_metric_reader": "fails without the distro too (SDK 1.45)",
    "test_concurrent_provider_owner_wins": "fails without the distro too (SDK 1.45)",
    "fastapi-first": "imports sentry_sdk (not installed)",
    # A child interpreter that inherited opentelemetry-instrument's hook: it stays quiet (no telemetry), but
    # loading the hook's distro and configurator entry points imports the SDK, which this case forbids.
    "test_api_only_and_no_implicit_sdk_import": "child interpreter: the inherited hook imports the SDK",
}


def _deselect_expression() -> str:
    return " and ".join(f"not {word}" for word in _NOT_HERE)


def _unpacked_sdist(package: str, into: Path) -> Path:
    """The installed version's sdist, unpacked (its tests are not in the wheel)."""
    version = metadata.version(package)
    download = subprocess.run(
        [str(BIN / "python"), "-m", "pip", "download", "-q", "--no-binary", ":all:", "--no-deps",
         "--dest", str(into), f"{package}=={version}"], capture_output=True, text=True, timeout=300)
    assert download.returncode == 0, download.stderr
    (archive,) = into.glob(f"{package}-{version}.tar.gz")
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / f"{package}-{version}"


def _run_under_distro(tmp_path: Path, source: Path, *selection: str) -> ET.Element:
    report = tmp_path / "report.xml"
    env = telemetry_env("http://127.0.0.1:9", OTEL_SERVICE_NAME="framework-suite",
                        OTEL_PYTHON_CONFIGURATOR="otel_distro", OTEL_TRACES_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none", PYTHONPATH="")
    done = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
         # opentelemetry-instrument imports the app's libraries before pytest can rewrite them
         "-W", "ignore::pytest.PytestAssertRewriteWarning", "-o", "addopts=", f"--junitxml={report}",
         *selection], cwd=source, env=env, capture_output=True, text=True, timeout=1500)
    assert report.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    assert suite is not None
    failures = [f"{case.get('classname')}::{case.get('name')}" for case in suite.iter("testcase")
                if case.find("failure") is not None or case.find("error") is not None]
    assert not failures, f"{len(failures)} failed under the distro:\n" + "\n".join(failures) + done.stdout[-4000:]
    return suite


def _passed(suite: ET.Element) -> int:
    return sum(1 for case in suite.iter("testcase")
               if not any(case.find(tag) is not None for tag in ("failure", "error", "skipped")))


@pytest.mark.timeout(1800)
def test_starlettes_own_opentelemetry_middleware_suite_passes_under_the_distro(tmp_path: Path) -> None:
    source = _unpacked_sdist("starlette", tmp_path)
    suite = _run_under_distro(tmp_path, source, "tests/middleware/test_opentelemetry.py", "-k", "not trio")
    assert _passed(suite) >= 20  # the whole file ran, not an empty selection


@pytest.mark.timeout(1800)
def test_fastapis_own_telemetry_suite_passes_under_the_distro(tmp_path: Path) -> None:
    source = _unpacked_sdist("fastapi", tmp_path)
    suite = _run_under_distro(tmp_path, source, "tests/test_telemetry/",
                              "-k", _deselect_expression())
    assert _passed(suite) >= 180
