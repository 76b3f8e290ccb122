"""Shared fixtures: a test OTLP receiver, free ports, and services started as real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_distro import _internal_errors
from tests.otlp_test_receiver import OtlpTestReceiver

# Under our own tests a swallowed internal error must fail the test that caused it.
_internal_errors.raise_internal_errors(True)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def production_errors() -> Iterator[None]:
    """Internal errors reported and swallowed as in production, for tests of that behaviour."""
    _internal_errors.raise_internal_errors(False)
    _internal_errors._reset_for_tests()
    try:
        yield
    finally:
        _internal_errors.raise_internal_errors(True)
        _internal_errors._reset_for_tests()


@pytest.fixture
def receiver() -> Iterator[OtlpTestReceiver]:
    with OtlpTestReceiver() as running:
        yield running


def telemetry_env(endpoint: str, **extra: str) -> dict[str, str]:
    """A clean environment for a service under opentelemetry-instrument."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OTEL_", "K8S_", "PYTHONPATH"))}
    env.update({
        "OTEL_PYTHON_DISTRO": "otel_distro",  # the upstream distro is installed too
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "200",
        "OTEL_BLRP_SCHEDULE_DELAY": "200",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
    })
    env.update(extra)
    return env


class Service:
    """A process started by a test, and always stopped by it."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_http(self, url: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.output()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"service not ready at {url}:\n{self.output()}")

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        """Until something accepts TCP connections on 127.0.0.1:``port`` (a server that is not HTTP)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"nothing listens on port {port}:\n{self.output()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator:
    started: list[Service] = []

    def start(argv: list[str], env: dict[str, str], name: str = "service", cwd: Path = ROOT) -> Service:
        service = Service(argv, env, tmp_path / f"{name}-{len(started)}.log", cwd)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


def http_get(url: str, method: str = "GET", timeout: float = 10.0) -> int:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def fresh_guards(monkeypatch: pytest.MonkeyPatch, seam: object, *names: str) -> tuple:
    """Give a ``_sdk_private`` seam module guards of the test's own (``seam.new_guards()``, set as ``names``):
    a test that retires them leaves the process's guards as they were."""
    guards = seam.new_guards()  # type: ignore[attr-defined]
    for name, guard in zip(names, guards, strict=True):
        monkeypatch.setattr(seam, name, guard)
    return guards
