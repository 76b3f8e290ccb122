"""Fixtures for the Collector-stack tests: real Prometheus, real Alertmanager, local sinks.

Everything binds 127.0.0.1 on free ports and every process started here is stopped in
a ``finally``. The shipped files under collector/ are never edited: the tests write an
overlay (short scrape/evaluation intervals, ``for: 0s``, range windows compressed to
10 s, local targets) into a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from otel_distro import stack as stack_
from otel_distro import stack_build
from tests.conftest import free_port

yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the shipped configs")

ROOT = Path(__file__).resolve().parents[2]
COLLECTOR = ROOT / "collector"
PROM_DIR = COLLECTOR / "prometheus"
AM_DIR = COLLECTOR / "alertmanager"
EMITTER = Path(__file__).with_name("emitter.py")
SERVICE = "shop"


# The chart's default values.yaml and values.schema.json (open-telemetry/opentelemetry-helm-charts,
# chart 0.170.0), provided to the project as reference data; not shipped.
CHART = Path("/work/shared/reference/opentelemetry-collector-chart")


@pytest.fixture(scope="session")
def built() -> stack_build.Built:
    """The stack's binaries through `otel-distro stack build`'s own code path (.ci/run builds them first)."""
    found = stack_build.find_built()
    if found is None and not stack_build.go_available():
        pytest.skip("Go is not installed: the Collector, Jaeger and VictoriaLogs cannot be built "
                    "(`otel-distro stack build` needs Go 1.26)")
    return found or stack_build.build()


@pytest.fixture(scope="session")
def chart() -> Path:
    if not (CHART / "values.schema.json").is_file():
        pytest.skip(f"the chart's values.yaml/values.schema.json are not at {CHART}")
    return CHART


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not installed (Debian packages prometheus, prometheus-alertmanager)")
    return path


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
# The overlay (short intervals, for: 0s, compressed windows, local targets) is the
# package's own (otel_distro/stack.py), shared with `otel-distro demo`.


def am_env(tmp: Path, sink_port: int, smtp_port: int) -> dict[str, str]:
    return stack_.alertmanager_env(tmp, f"http://127.0.0.1:{sink_port}", smtp_port)


render_alertmanager = stack_.render_alertmanager


# --------------------------------------------------------------------------- dashboards

DASHBOARDS = sorted((COLLECTOR / "grafana" / "dashboards").glob("*.json"))
PanelKey = tuple[str, str, str]  # dashboard uid, panel title, refId


def panel_targets() -> Iterator[tuple[str, str, str, str]]:
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                yield dashboard["uid"], panel["title"], target["refId"], target["expr"]


def fill_variables(expr: str, service: str) -> str:
    """A panel query as Grafana would send it, with ``$service`` set to ``service``."""
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
            .replace("$__range", "1h").replace("$service", service))


def dashboard_gaps(query: Callable[[str], list], no_data: dict[PanelKey, str], service: str
                   ) -> tuple[list[str], list[PanelKey], set[PanelKey], set[PanelKey]]:
    """Run every panel query: (panels without data, NO_DATA panels with data,
    NO_DATA keys naming no panel, every panel key seen)."""
    seen: set[PanelKey] = set()
    empty: list[str] = []
    unexpected: list[PanelKey] = []
    for uid, title, ref, expr in panel_targets():
        key = (uid, title, ref)
        seen.add(key)
        filled = fill_variables(expr, service)
        result = query(filled)
        if key in no_data:
            if result:
                unexpected.append(key)
        elif not result:
            empty.append(f"{uid} / {title} / {ref}: {filled}")
    return empty, unexpected, set(no_data) - seen, seen


# --------------------------------------------------------------------------- sinks

class Sinks:
    """Webhook, Slack-compatible and PagerDuty endpoints (the package's AlertSink) plus SMTP."""

    def __init__(self, http: stack_.AlertSink) -> None:
        self.http = http
        self.lock = threading.Lock()
        self.mail: list[Any] = []

    def posts(self, path: str) -> list[dict]:
        return [body for _, body in self.http.received(path)]

    def emails(self) -> list[Any]:
        with self.lock:
            return list(self.mail)

    def summary(self) -> str:
        lines = [f"{p}: {json.dumps(b)[:300]}" for p, b in self.http.received()]
        lines += [f"mail: {m['Subject']}" for m in self.emails()]
        return "received so far:\n  " + "\n  ".join(lines or ["nothing"])


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[Sinks, int, int]]:
    aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller", reason="aiosmtpd provides the test SMTP server")
    http = stack_.AlertSink().start()
    collected = Sinks(http)

    class MailHandler:
        async def handle_DATA(self, server, session, envelope):
            with collected.lock:
                collected.mail.append(message_from_bytes(envelope.content))
            return "250 Message accepted for delivery"

    smtp_port = free_port()
    smtp = aiosmtpd_controller.Controller(MailHandler(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        yield collected, http.server.server_address[1], smtp_port
    finally:
        smtp.stop()
        http.stop()


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
    if stack_.binaries() is None:
        pytest.skip("prometheus / prometheus-alertmanager not installed (Debian packages; .ci/run installs them)")
    collected, sink_port, smtp_port = sinks
    tmp = tmp_path_factory.mktemp("stack")
    prom_port, am_port, emitter_port = free_port(), free_port(), free_port()
    emitter = Emitter(emitter_port, tmp)
    local = stack_.LocalStack.start(tmp, targets={SERVICE: f"127.0.0.1:{emitter_port}"},
                                    alertmanager_env_=am_env(tmp, sink_port, smtp_port),
                                    prometheus_port=prom_port, alertmanager_port=am_port)
    try:
        check = subprocess.run([tool("promtool"), "check", "config", str(local.prometheus_config)],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0, check.stdout + check.stderr
        emitter.start()
        yield Stack(tmp, collected, prom_port, am_port, emitter)
    finally:
        emitter.stop()
        local.stop()
