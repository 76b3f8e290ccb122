"""Run the shipped Prometheus and Alertmanager configs locally (fast demo timing by default).

Used by ``otel-distro demo``, ``otel-distro stack up`` (:mod:`otel_distro.stack_up`) and the Collector-stack
tests. The files under
``collector/`` are never edited: an overlay is written to a work folder with
short scrape/evaluation intervals, ``for: 0s`` and every range window
shrunk, local scrape targets and the local Alertmanager. Everything binds
127.0.0.1; :class:`LocalStack` stops what it started.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from otel_distro import _assets

COLLECTOR_DIR = _assets.collector_dir()
PROMETHEUS_DIR = COLLECTOR_DIR / "prometheus"
ALERTMANAGER_DIR = COLLECTOR_DIR / "alertmanager"
COMPRESSED_WINDOW = "10s"


def _yaml() -> Any:
    import yaml  # the `collector` extra

    return yaml


def binaries() -> tuple[str, str] | None:
    """Paths of prometheus and alertmanager (Debian: prometheus-alertmanager), if installed."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return (prometheus, alertmanager) if prometheus and alertmanager else None


def compress_expr(expr: str) -> str:
    """Shrink every range selector ([5m], [1h], [3d] ...) to a few scrape intervals."""
    return re.sub(r"\[(\d+[smhdwy])+\]", f"[{COMPRESSED_WINDOW}]", expr)


def write_rules_overlay(dest: Path) -> list[Path]:
    yaml = _yaml()
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
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


def write_prometheus_overlay(work: Path, alertmanager_port: int, targets: Mapping[str, str],
                             collector: Mapping[str, str] | None = None, *, demo_timing: bool = True) -> Path:
    """The shipped prometheus.yml with local targets and, with ``demo_timing``, short intervals and rules.

    ``targets`` (job → host:port) feed the ``services`` file_sd job; ``collector`` (shipped job name →
    host:port, e.g. ``otelcol-exporter``, ``otelcol``) keeps those static jobs, pointed at the local
    Collector. The alerting section points at the local Alertmanager; the other jobs are dropped.
    """
    yaml = _yaml()
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    rules_dir = work / "rules"
    if demo_timing:
        write_rules_overlay(rules_dir)
        config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"})
        config["rule_files"] = [str(rules_dir / "*.yml")]
    else:
        config["rule_files"] = [str(PROMETHEUS_DIR / "rules" / "*.yml")]
    services_dir = work / "services"
    services_dir.mkdir(parents=True, exist_ok=True)
    (services_dir / "local.yml").write_text(yaml.safe_dump(
        [{"targets": [address], "labels": {"job": job}} for job, address in targets.items()]))
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
        f"127.0.0.1:{alertmanager_port}"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    if "services" not in jobs:
        raise ValueError("collector/prometheus/prometheus.yml has no `services` scrape job")
    services = jobs["services"]
    services["file_sd_configs"][0]["files"] = [str(services_dir / "*.yml")]
    services["file_sd_configs"][0]["refresh_interval"] = "1s" if demo_timing else "30s"
    kept = [services]
    for name, address in (collector or {}).items():
        if name not in jobs:
            raise ValueError(f"collector/prometheus/prometheus.yml has no `{name}` scrape job")
        jobs[name]["static_configs"] = [{"targets": [address]}]
        kept.append(jobs[name])
    config["scrape_configs"] = kept
    out = work / "prometheus.yml"
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return out


def render_alertmanager(work: Path, env: Mapping[str, str]) -> Path:
    """The shipped Alertmanager template rendered with ``env`` (render.sh)."""
    out = work / "alertmanager.yml"
    subprocess.run(["sh", str(ALERTMANAGER_DIR / "render.sh"), str(ALERTMANAGER_DIR / "alertmanager.yml"),
                    str(out)], env={"PATH": "/usr/bin:/bin", **env}, check=True,
                   capture_output=True, text=True, timeout=30)
    return out


def alertmanager_env(work: Path, sinks_url: str, smtp_port: int) -> dict[str, str]:
    """Every receiver pointed at local sinks: ``{sinks_url}/slack|/pagerduty|/webhook`` and SMTP."""
    secrets = work / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "slack_api_url").write_text(f"{sinks_url}/slack")
    (secrets / "pagerduty_routing_key").write_text("local-routing-key-0123456789abcdef")
    (secrets / "smtp_password").write_text("unused")
    return {
        "ALERTMANAGER_SECRETS_DIR": str(secrets),
        "ALERTMANAGER_SMTP_SMARTHOST": f"127.0.0.1:{smtp_port}",
        "ALERTMANAGER_SMTP_FROM": "alertmanager@localhost.invalid",
        "ALERTMANAGER_SMTP_REQUIRE_TLS": "false",
        "ALERTMANAGER_EMAIL_TO": "oncall@localhost.invalid",
        "ALERTMANAGER_PAGERDUTY_URL": f"{sinks_url}/pagerduty",
        "ALERTMANAGER_WEBHOOK_URL": f"{sinks_url}/webhook",
        "ALERTMANAGER_SLACK_CHANNEL": "#alerts",
        "ALERTMANAGER_GROUP_WAIT": "1s",
        "ALERTMANAGER_GROUP_INTERVAL": "1s",
    }


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)



def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports the OS picks: every socket stays bound until all are picked (one at a
    time, the OS may hand the same port out twice)."""
    with contextlib.ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports

@dataclass
class LocalStack:
    """Prometheus and Alertmanager as child processes, on the overlay in ``work``."""

    work: Path
    prometheus_config: Path
    alertmanager_config: Path
    prometheus_port: int
    alertmanager_port: int
    processes: list[subprocess.Popen]

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"

    @classmethod
    def start(cls, work: Path, *, targets: Mapping[str, str], alertmanager_env_: Mapping[str, str],
              prometheus_port: int, alertmanager_port: int, ready_timeout: float = 30.0,
              collector: Mapping[str, str] | None = None, demo_timing: bool = True) -> LocalStack:
        found = binaries()
        if found is None:
            raise FileNotFoundError("prometheus and prometheus-alertmanager are not installed")
        prometheus, alertmanager = found
        work.mkdir(parents=True, exist_ok=True)
        am_config = render_alertmanager(work, alertmanager_env_)
        prom_config = write_prometheus_overlay(work, alertmanager_port, targets, collector,
                                               demo_timing=demo_timing)
        stack = cls(work, prom_config, am_config, prometheus_port, alertmanager_port, [])
        try:
            with open(work / "alertmanager.log", "w") as am_log:
                stack.processes.append(subprocess.Popen(
                    [alertmanager, f"--config.file={am_config}", f"--storage.path={work / 'am-data'}",
                     f"--web.listen-address=127.0.0.1:{alertmanager_port}", "--cluster.listen-address=",
                     "--log.level=warn"], stdout=am_log, stderr=subprocess.STDOUT))
            with open(work / "prometheus.log", "w") as prom_log:
                stack.processes.append(subprocess.Popen(
                    [prometheus, f"--config.file={prom_config}", f"--storage.tsdb.path={work / 'prom-data'}",
                     f"--web.listen-address=127.0.0.1:{prometheus_port}", "--rules.alert.resend-delay=1s",
                     "--log.level=warn"], stdout=prom_log, stderr=subprocess.STDOUT))
            stack.wait_ready(ready_timeout)
        except BaseException:
            stack.stop()
            raise
        return stack

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for url, log in ((f"{self.alertmanager_url}/-/ready", "alertmanager.log"),
                         (f"{self.prometheus_url}/-/ready", "prometheus.log")):
            while not _ready(url):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise RuntimeError(f"{url} not ready:\n{(self.work / log).read_text()}")
                time.sleep(0.2)

    def stop(self) -> None:
        for process in reversed(self.processes):
            _stop(process)
        self.processes.clear()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class AlertSink:
    """Local stand-ins for the Slack, PagerDuty Events v2 and webhook receivers.

    Every POST is kept as (path, JSON body) and handed to ``on_post``; PagerDuty gets its 202 answer.
    """

    posts: list[tuple[str, dict]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    on_post: Callable[[str, dict], None] | None = None

    def start(self) -> AlertSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                with sink.lock:
                    sink.posts.append((self.path, body))
                if sink.on_post is not None:
                    sink.on_post(self.path, body)
                if self.path == "/pagerduty":
                    payload = json.dumps({"status": "success", "message": "Event processed",
                                          "dedup_key": body.get("dedup_key", "")}).encode()
                    self.send_response(202)
                else:
                    payload = b"ok"
                    self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def received(self, path: str | None = None) -> list[tuple[str, dict]]:
        with self.lock:
            return [(p, b) for p, b in self.posts if path is None or p == path]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
