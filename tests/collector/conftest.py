"""Fixtures for the Collector-stack tests: real Prometheus, real Alertmanager, local sinks.

Everything binds 127.0.0.1 on free ports and every process started here is stopped in
a ``finally``. The shipped files under collector/ are never edited: the tests write an
overlay (short scrape/evaluation intervals, ``for: 0s``, range windows compressed to
10 s, local targets) into a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the shipped configs")

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
PROM_DIR = COLLECTOR / "prometheus"
AM_DIR = COLLECTOR / "alertmanager"
EMITTER = Path(__file__).with_name("emitter.py")
SERVICE = "shop"
COMPRESSED_WINDOW = "10s"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian packages prometheus, prometheus-alertmanager)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             diagnostics: Callable[[], str] | None = None) -> Any:
    """Poll ``predicate`` (bounded in time and count) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.25) + 1):
        try:
            result = predicate()
        except (OSError, urllib.error.URLError, ValueError):
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            break
        time.sleep(0.25)
    extra = f"\n{diagnostics()}" if diagnostics else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{extra}")


def http_get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


# --------------------------------------------------------------------------- overlay

def compress_expr(expr: str) -> str:
    """Shrink every range selector ([5m], [1h], [3d] ...) to a few scrape intervals."""
    return re.sub(r"\[(\d+[smhdwy])+\]", f"[{COMPRESSED_WINDOW}]", expr)


def write_rules_overlay(dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted((PROM_DIR / "rules").glob("*.yml")):
        data = yaml.safe_load(src.read_text())
        for group in data["groups"]:
            for rule in group["rules"]:
                rule["expr"] = compress_expr(rule["expr"])
                if "alert" in rule:
                    rule["for"] = "0s"
        out = dest / src.name
        out.write_text(yaml.safe_dump(data, sort_keys=False))
        written.append(out)
    return written


def write_prometheus_overlay(tmp: Path, am_port: int, emitter_port: int) -> Path:
    """The shipped prometheus.yml with local targets and short intervals.

    Kept: the `services` file_sd job (now pointing at the emitter, job=shop) and the
    alerting section (now the test Alertmanager). Dropped: the Collector jobs (no
    otelcol binary here), Prometheus/Alertmanager self-scrapes (ports differ).
    """
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    rules_dir = tmp / "rules"
    write_rules_overlay(rules_dir)
    services_dir = tmp / "services"
    services_dir.mkdir(exist_ok=True)
    (services_dir / "shop.yml").write_text(yaml.safe_dump(
        [{"targets": [f"127.0.0.1:{emitter_port}"], "labels": {"job": SERVICE}}]))
    config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"})
    config["rule_files"] = [str(rules_dir / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [f"127.0.0.1:{am_port}"]
    services = [job for job in config["scrape_configs"] if job["job_name"] == "services"]
    assert services, "the shipped prometheus.yml lost its `services` scrape job"
    services[0]["file_sd_configs"][0]["files"] = [str(services_dir / "*.yml")]
    services[0]["file_sd_configs"][0]["refresh_interval"] = "1s"
    config["scrape_configs"] = services
    out = tmp / "prometheus.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def render_alertmanager(tmp: Path, env: dict[str, str]) -> Path:
    out = tmp / "alertmanager.yml"
    subprocess.run(["sh", str(AM_DIR / "render.sh"), str(AM_DIR / "alertmanager.yml"), str(out)],
                   env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                   check=True, capture_output=True, text=True, timeout=30)
    return out


def am_env(tmp: Path, sink_port: int, smtp_port: int) -> dict[str, str]:
    secrets = tmp / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "slack_api_url").write_text(f"http://127.0.0.1:{sink_port}/slack")
    (secrets / "pagerduty_routing_key").write_text("test-routing-key-0123456789abcdef")
    (secrets / "smtp_password").write_text("unused")
    return {
        "ALERTMANAGER_SECRETS_DIR": str(secrets),
        "ALERTMANAGER_SMTP_SMARTHOST": f"127.0.0.1:{smtp_port}",
        "ALERTMANAGER_SMTP_FROM": "alertmanager@test.invalid",
        "ALERTMANAGER_SMTP_REQUIRE_TLS": "false",
        "ALERTMANAGER_EMAIL_TO": "oncall@test.invalid",
        "ALERTMANAGER_PAGERDUTY_URL": f"http://127.0.0.1:{sink_port}/pagerduty",
        "ALERTMANAGER_WEBHOOK_URL": f"http://127.0.0.1:{sink_port}/webhook",
        "ALERTMANAGER_SLACK_CHANNEL": "#test-alerts",
        "ALERTMANAGER_GROUP_WAIT": "1s",
        "ALERTMANAGER_GROUP_INTERVAL": "1s",
    }


# --------------------------------------------------------------------------- sinks

class Sinks:
    """Webhook, Slack-compatible and PagerDuty Events v2 endpoints plus an SMTP server."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.http: list[tuple[str, dict]] = []
        self.mail: list[Any] = []

    def posts(self, path: str) -> list[dict]:
        with self.lock:
            return [body for p, body in self.http if p == path]

    def emails(self) -> list[Any]:
        with self.lock:
            return list(self.mail)

    def summary(self) -> str:
        with self.lock:
            lines = [f"{p}: {json.dumps(b)[:300]}" for p, b in self.http]
            lines += [f"mail: {m['Subject']}" for m in self.mail]
        return "received so far:\n  " + "\n  ".join(lines or ["nothing"])


def _make_handler(sinks: Sinks):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with sinks.lock:
                sinks.http.append((self.path, body))
            if self.path == "/pagerduty":
                payload = json.dumps({"status": "success", "message": "Event processed",
                                      "dedup_key": body.get("dedup_key", "")}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
            else:
                payload = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[Sinks, int, int]]:
    aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd provides the test SMTP server")
    collected = Sinks()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(collected))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    class MailHandler:
        async def handle_DATA(self, server, session, envelope):
            with collected.lock:
                collected.mail.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    smtp_port = free_port()
    smtp = aiosmtpd_controller.Controller(MailHandler(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        yield collected, server.server_address[1], smtp_port
    finally:
        smtp.stop()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- processes

class Emitter:
    """The stand-in service process (tests/collector/emitter.py); can be stopped and restarted."""

    def __init__(self, port: int, log_dir: Path) -> None:
        self.port = port
        self.log_dir = log_dir
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        err = open(self.log_dir / f"emitter-{self.starts}.log", "w")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, str(EMITTER), str(self.port), SERVICE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
        finally:
            err.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # "ready", or "" if it died
        assert line.strip() == "ready", f"emitter did not start: {(self.log_dir / f'emitter-{self.starts}.log').read_text()}"

    def send(self, command: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == f"ok {command}"

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


class Stack:
    def __init__(self, tmp: Path, sinks: Sinks, prom_port: int, am_port: int, emitter: Emitter) -> None:
        self.tmp = tmp
        self.sinks = sinks
        self.prom = f"http://127.0.0.1:{prom_port}"
        self.am = f"http://127.0.0.1:{am_port}"
        self.emitter = emitter

    def query(self, expr: str) -> list[dict]:
        data = http_get_json(f"{self.prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert data["status"] == "success", data
        return data["data"]["result"]

    def prometheus_alerts(self) -> str:
        try:
            alerts = http_get_json(f"{self.prom}/api/v1/alerts")["data"]["alerts"]
        except (OSError, urllib.error.URLError, ValueError) as exc:
            return f"Prometheus alerts unavailable: {exc}"
        return "Prometheus alerts: " + ", ".join(
            f"{a['labels'].get('alertname')}[{a['labels'].get('severity')}]={a['state']}" for a in alerts)

    def diagnostics(self) -> str:
        return self.prometheus_alerts() + "\n" + self.sinks.summary()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, sinks: tuple[Sinks, int, int]) -> Iterator[Stack]:
    prometheus = tool("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or tool("alertmanager")
    collected, sink_port, smtp_port = sinks
    tmp = tmp_path_factory.mktemp("stack")
    prom_port, am_port, emitter_port = free_port(), free_port(), free_port()

    am_config = render_alertmanager(tmp, am_env(tmp, sink_port, smtp_port))
    prom_config = write_prometheus_overlay(tmp, am_port, emitter_port)
    check = subprocess.run([tool("promtool"), "check", "config", str(prom_config)],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr

    procs: list[subprocess.Popen] = []
    emitter = Emitter(emitter_port, tmp)
    try:
        with open(tmp / "alertmanager.log", "w") as am_log:
            procs.append(subprocess.Popen(
                [alertmanager, f"--config.file={am_config}", f"--storage.path={tmp / 'am-data'}",
                 f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address=",
                 "--log.level=warn"], stdout=am_log, stderr=subprocess.STDOUT))
        with open(tmp / "prometheus.log", "w") as prom_log:
            procs.append(subprocess.Popen(
                [prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={tmp / 'prom-data'}",
                 f"--web.listen-address=127.0.0.1:{prom_port}", "--rules.alert.resend-delay=1s",
                 "--log.level=warn"], stdout=prom_log, stderr=subprocess.STDOUT))
        emitter.start()
        wait_for(lambda: http_ok(f"http://127.0.0.1:{am_port}/-/ready"), 30, "Alertmanager ready",
                 lambda: (tmp / "alertmanager.log").read_text())
        wait_for(lambda: http_ok(f"http://127.0.0.1:{prom_port}/-/ready"), 30, "Prometheus ready",
                 lambda: (tmp / "prometheus.log").read_text())
        yield Stack(tmp, collected, prom_port, am_port, emitter)
    finally:
        emitter.stop()
        for proc in reversed(procs):
            stop(proc)
