"""Standard variables are honoured or refused aloud: OTLP timeouts, log batch sizes, registered samplers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

from otel_distro import doctor, logs, traces
from otel_distro.settings import load


class _SilentPeer:
    """Accepts connections and never answers: an export to it ends only by its timeout."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                self.held.append(self.sock.accept()[0])
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_a_signals_own_otlp_timeout_bounds_its_export() -> None:
    peer = _SilentPeer()
    try:
        settings = load({"OTEL_EXPORTER_OTLP_ENDPOINT": peer.url, "OTEL_EXPORTER_OTLP_TIMEOUT": "60000",
                         "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "500"})
        (exporter,) = traces.exporters(settings)
        provider = TracerProvider()
        span = provider.get_tracer("t").start_span("s")
        span.end()
        started = time.monotonic()
        result = exporter.export([span])
        took = time.monotonic() - started
        exporter.shutdown()
    finally:
        peer.close()
    assert result is SpanExportResult.FAILURE
    assert took < 20, took  # the general 60 s would have held it far longer


def test_the_log_batch_size_is_honoured() -> None:
    exported = InMemoryLogRecordExporter()
    batches: list[int] = []
    original = exported.export
    exported.export = lambda batch: (batches.append(len(batch)), original(batch))[1]  # type: ignore[method-assign]
    settings = load({"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "2", "OTEL_BLRP_MAX_QUEUE_SIZE": "100",
                     "OTEL_BLRP_SCHEDULE_DELAY": "60000"})
    provider = logs.build(settings, Resource({}), log_exporters=[exported])
    logger = provider.get_logger("t")
    from opentelemetry._logs import LogRecord

    for n in range(5):
        logger.emit(LogRecord(body=f"record {n}"))
    provider.force_flush()
    provider.shutdown()
    assert len(exported.get_finished_logs()) == 5
    assert max(batches) <= 2 and sum(batches) == 5


def test_a_batch_larger_than_the_queue_is_refused_aloud(capsys) -> None:
    settings = load({"OTEL_BLRP_MAX_EXPORT_BATCH_SIZE": "600", "OTEL_BLRP_MAX_QUEUE_SIZE": "100"})
    assert (settings.log_queue_size, settings.log_export_batch_size) == (100, 100)
    (line,) = capsys.readouterr().err.splitlines()
    assert "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE='600' is invalid" in line and "OTEL_BLRP_MAX_QUEUE_SIZE (100)" in line


_REGISTERED = """
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased

def make(argument):
    return TraceIdRatioBased(float(argument) if argument else 0.125)
"""


def test_a_sampler_registered_through_an_entry_point_is_used(tmp_path: Path) -> None:
    (tmp_path / "house_sampler.py").write_text(_REGISTERED)
    info = tmp_path / "house_sampler-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: house-sampler\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[opentelemetry_traces_sampler]\nhouse = house_sampler:make\n")
    code = textwrap.dedent("""
        from otel_distro import settings, traces
        chosen = settings.load()
        print(chosen.sampler, traces.sampler(chosen).get_description())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=str(tmp_path), OTEL_TRACES_SAMPLER="house", OTEL_TRACES_SAMPLER_ARG="0.25")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["house", "TraceIdRatioBased{0.25}"], done.stdout + done.stderr
    assert done.stderr == ""


def test_an_unregistered_sampler_is_refused_aloud(capsys) -> None:
    assert load({"OTEL_TRACES_SAMPLER": "house"}).sampler == "parentbased_always_on"
    assert "OTEL_TRACES_SAMPLER='house' is invalid" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "source"), [
    ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "environment (not read: the distro detects"),
    ("OTEL_BSP_MAX_QUEUE_SIZE", "environment (read by the SDK)"),
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "environment"),
])
def test_doctor_says_who_reads_each_variable(name: str, source: str, monkeypatch: pytest.MonkeyPatch,
                                             capsys) -> None:
    monkeypatch.setenv(name, "1000" if "TIMEOUT" in name or "SIZE" in name else "host")
    rows = {r["variable"]: r["source"] for r in doctor.configuration_rows(load())}
    assert rows[name].startswith(source), rows[name]
    if name == "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS":
        assert "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS is set but not read" in capsys.readouterr().err
