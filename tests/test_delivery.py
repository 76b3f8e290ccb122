"""Delivery under real load and hostile values, seen from a real process and the receiver's decoded bytes."""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, free_port, telemetry_env
from tests.otlp_test_receiver import OtlpTestReceiver

# Real processes on a shared 2-core machine: a start under opentelemetry-instrument alone can take tens of
# seconds there, and the load tests log 80,000-320,000 lines.
pytestmark = pytest.mark.timeout(900)


def run_instrumented(script: str, *args: str, env: dict[str, str], timeout: float = 300.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, script, *args],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_a_lone_surrogate_in_one_span_costs_only_itself(receiver: OtlpTestReceiver) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="files", OTEL_METRICS_EXPORTER="none",
                        OTEL_LOGS_EXPORTER="none")
    done = run_instrumented("tests/apps/surrogate_spans.py", env=env)
    assert done.returncode == 0, done.stderr
    spans = receiver.wait_for(lambda: len(receiver.spans()) >= 101 and receiver.spans(), what="101 spans")
    names = sorted(s.name for s in spans)
    assert len(names) == 101
    assert "open report-\\udcff.csv" in names  # escaped, not lost
    bad = next(s for s in spans if s.name == "open report-\\udcff.csv")
    assert bad.attributes == {"file.index": 50, "file.path": "/data/report-\\udcff.csv"}
    assert bad.events == [("open report-\\udcff.csv", {"note": "report-\\udcff.csv"})]
    assert "not valid Unicode" in done.stderr and "backslash escapes" in done.stderr
    assert "copy-based" not in done.stderr


LINE = re.compile(r"line (\d+) (\d+)")
LOST_IN_ALL = re.compile(r"log records not exported in all: (\d+)")


def _console_lines(stderr: str) -> set[tuple[int, int]]:
    return {(int(t), int(i)) for t, i in re.findall(r'"message": "line (\d+) (\d+)"', stderr)}


def _received_lines(receiver: OtlpTestReceiver) -> list[tuple[int, int]]:
    return [(int(m[1]), int(m[2])) for m in (LINE.fullmatch(str(log.body)) for log in receiver.logs()) if m]


def test_sixteen_threads_with_a_slow_collector_print_every_line_and_count_every_loss(
        receiver: OtlpTestReceiver) -> None:
    receiver.delay = 0.05  # a Collector slower than the app: the batch queue fills up
    threads, lines = 16, 20_000
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="load", OTEL_DISTRO_LOG_FORMAT="json",
                        OTEL_TRACES_EXPORTER="none", OTEL_DISTRO_SYSTEM_METRICS="false",
                        OTEL_DISTRO_SHUTDOWN_TIMEOUT="240")
    done = run_instrumented("tests/apps/threaded_logging.py", str(threads), str(lines), env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    created = threads * lines
    assert len(_console_lines(done.stderr)) == created  # the console lost nothing
    received = _received_lines(receiver)
    assert len(set(received)) == len(received)
    lost = [int(n) for n in LOST_IN_ALL.findall(done.stderr)]
    dropped = lost[0] if lost else 0
    assert len(received) + dropped == created
    if dropped:  # reported while it happened too, and exported as the SDK's processor metric
        assert re.search(r"otel-distro: \d+ log records dropped \(\d+ in all\)", done.stderr)
        points = [p for m in receiver.metric("otel.sdk.processor.log.processed") for p in m.points
                  if p.attributes.get("error.type") == "queue_full"]
        assert points and max(p.value for p in points) == dropped


def test_eight_threads_with_default_settings_lose_nothing(receiver: OtlpTestReceiver) -> None:
    # 64,000 lines: below the default batch queue bound (OTEL_BLRP_MAX_QUEUE_SIZE 65,536), so nothing may be lost
    # however slowly the receiver decodes; past that bound a loss is counted (the sixteen-thread test). With 80,000
    # a clean-clone CI run once lost 2,688 when the receiver, decoding in the test's own process, fell behind.
    threads, lines = 8, 8_000
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="load", OTEL_TRACES_EXPORTER="none",
                        OTEL_METRICS_EXPORTER="none")
    done = run_instrumented("tests/apps/threaded_logging.py", str(threads), str(lines), env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    received = _received_lines(receiver)
    assert sorted(received) == [(t, i) for t in range(threads) for i in range(lines)], done.stderr[-2000:]
    assert not LOST_IN_ALL.search(done.stderr)


def _diagnostic_lines(stderr: str) -> list[dict]:
    """The JSON lines on stderr that are not the app's own log lines."""
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line["logger"] != "load"]


def _run_with_json_console(endpoint: str) -> subprocess.CompletedProcess:
    env = telemetry_env(endpoint, OTEL_SERVICE_NAME="load", OTEL_DISTRO_LOG_FORMAT="json",
                        OTEL_METRICS_EXPORTER="none", OTEL_EXPORTER_OTLP_TIMEOUT="3000")
    return run_instrumented("tests/apps/threaded_logging.py", "1", "5", env=env, timeout=300)


def test_json_console_shows_a_collector_that_is_down_as_json_on_stderr() -> None:
    done = _run_with_json_console(f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 0
    assert len(_console_lines(done.stderr)) == 5
    failures = [line for line in _diagnostic_lines(done.stderr) if "export" in line["message"]]
    assert failures and all(line["level"] in ("WARNING", "ERROR") for line in failures)
    assert any(line["logger"].startswith("opentelemetry.exporter") for line in failures)


def test_json_console_shows_a_401_as_json_on_stderr(receiver: OtlpTestReceiver) -> None:
    receiver.status = 401
    done = _run_with_json_console(receiver.endpoint)
    assert done.returncode == 0
    assert any("401" in line["message"] for line in _diagnostic_lines(done.stderr)), done.stderr[-2000:]


def test_json_console_shows_a_partial_success_with_its_count(receiver: OtlpTestReceiver) -> None:
    receiver.partial_success = (2, "two records had no body")
    done = _run_with_json_console(receiver.endpoint)
    assert done.returncode == 0
    rejected = [line["message"] for line in _diagnostic_lines(done.stderr) if "partial success" in line["message"]]
    assert rejected and re.search(r"rejected \d+ (log records|spans) \(partial success\): two records had no body",
                                  rejected[0])


@pytest.mark.parametrize(("variable", "what"), [("OTEL_EXPORTER_OTLP_CERTIFICATE", "CA certificate"),
                                               ("OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "CA certificate"),
                                               ("OTEL_EXPORTER_OTLP_CLIENT_KEY", "client private key")])
def test_a_tls_file_that_does_not_exist_is_named_at_start_up(receiver: OtlpTestReceiver, variable: str,
                                                             what: str) -> None:
    env = telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="load", OTEL_METRICS_EXPORTER="none",
                        **{variable: "/nonexistent/tls.pem"})
    done = run_instrumented("tests/apps/threaded_logging.py", "1", "1", env=env, timeout=300)
    assert done.returncode == 0
    (line,) = [line for line in done.stderr.splitlines() if variable in line]
    assert "/nonexistent/tls.pem" in line and f"{what} file (PEM)" in line


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make the Collector's certificate")
def test_an_untrusted_collector_certificate_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    receiver = OtlpTestReceiver()
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    receiver._server.socket = tls.wrap_socket(receiver._server.socket, server_side=True)
    with receiver:
        env = telemetry_env(f"https://127.0.0.1:{receiver.port}", OTEL_SERVICE_NAME="tls",
                            OTEL_EXPORTER_OTLP_TIMEOUT="3000")
        done = run_instrumented("tests/apps/threaded_logging.py", "1", "3", env=env, timeout=300)
    assert done.returncode == 0
    tls_lines = [line for line in done.stderr.splitlines() if "TLS certificate is not trusted" in line]
    assert len(tls_lines) == 1 and "OTEL_EXPORTER_OTLP_CERTIFICATE" in tls_lines[0]
    assert "self-signed certificate" in tls_lines[0]
    assert "Transient error" not in done.stderr  # the retries' lines, one per signal, say nothing more


@pytest.mark.parametrize("log_format", ["text", "off"])
def test_a_collector_that_is_down_is_said_on_stderr_in_text_and_without_a_console(log_format: str) -> None:
    env = telemetry_env(f"http://127.0.0.1:{free_port()}", OTEL_SERVICE_NAME="load", OTEL_DISTRO_LOG_FORMAT=log_format,
                        OTEL_METRICS_EXPORTER="none", OTEL_EXPORTER_OTLP_TIMEOUT="3000")
    done = run_instrumented("tests/apps/threaded_logging.py", "1", "5", env=env, timeout=300)
    assert done.returncode == 0
    said = [line for line in done.stderr.splitlines()
            if "opentelemetry.exporter" in line and "export" in line and not line.startswith("{")]
    assert said, done.stderr[-2000:]
