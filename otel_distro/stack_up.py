"""The whole stack on loopback as local processes, no Docker: ``otel-distro stack up``.

VictoriaLogs, Jaeger and our Collector (built by :mod:`otel_distro.stack_build`), Prometheus and Alertmanager
(system packages, :mod:`otel_distro.stack`), each on its standard port unless told otherwise, each
health-checked before the next one starts. The shipped configs are used as they are: the Collector's gets
only its listening ports moved (and its peers' addresses through the environment it reads), Jaeger's
takes every port from the environment, Prometheus and Alertmanager get the overlay of
:mod:`otel_distro.stack`. :func:`run_until_stopped` keeps everything in the foreground until SIGINT or
SIGTERM, then stops every process it started.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from otel_distro import _assets, stack, stack_build

__all__ = ["STANDARD_PORTS", "RunningStack", "choose_ports", "collector_config", "run_until_stopped", "start"]

STANDARD_PORTS: Mapping[str, int] = {
    "otlp_grpc": 4317, "otlp_http": 4318, "collector_health": 13133, "collector_metrics": 8888,
    "collector_prometheus": 8889, "collector_pprof": 1777, "collector_zpages": 55679,
    "jaeger": 16686, "jaeger_grpc": 16685, "jaeger_otlp": 14317, "jaeger_health": 14133,
    "jaeger_metrics": 14269, "victorialogs": 9428, "prometheus": 9090, "alertmanager": 9093,
}
# The Collector config's listeners are written with the standard ports: these names move them.
_COLLECTOR_LISTENERS = ("otlp_grpc", "otlp_http", "collector_health", "collector_metrics",
                        "collector_prometheus", "collector_pprof", "collector_zpages")
_LISTENER_SECTIONS = ("receivers", "extensions")
_SERVER_EXPORTERS = ("prometheus",)
_ENDPOINT = re.compile(r"^(?P<host>.*):(?P<port>\d+)$")
DEFAULT_LOG_RETENTION = "30d"


def choose_ports(overrides: Mapping[str, int], *, free: bool = False) -> dict[str, int]:
    """Every port of the stack: the standard one, an override, or (``free``) one the OS picks."""
    unknown = sorted(set(overrides) - set(STANDARD_PORTS))
    if unknown:
        raise ValueError(f"unknown port name(s) {', '.join(unknown)}; accepted: {', '.join(STANDARD_PORTS)}")
    picked = stack.free_ports(len(STANDARD_PORTS)) if free else list(STANDARD_PORTS.values())
    ports = {name: overrides.get(name, chosen) for name, chosen in zip(STANDARD_PORTS, picked, strict=True)}
    if len(set(ports.values())) != len(ports):
        raise ValueError(f"two services would share a port: {ports}")
    return ports


def _move_listeners(node: Any, port_map: Mapping[int, int]) -> Any:
    """A copy of ``node`` with every listening ``endpoint: host:port`` / ``port: N`` in ``port_map`` moved."""
    if isinstance(node, Mapping):
        moved = {}
        for key, value in node.items():
            if key == "endpoint" and isinstance(value, str) and (match := _ENDPOINT.match(value)) \
                    and int(match["port"]) in port_map:
                value = f"{match['host']}:{port_map[int(match['port'])]}"
            elif key == "port" and isinstance(value, int) and value in port_map:
                value = port_map[value]
            else:
                value = _move_listeners(value, port_map)
            moved[key] = value
        return moved
    if isinstance(node, list):
        return [_move_listeners(item, port_map) for item in node]
    return node


def collector_config(config: Mapping[str, Any], port_map: Mapping[int, int]) -> dict[str, Any]:
    """``config`` with its listeners (receivers, extensions, the prometheus exporter, internal telemetry)
    moved by ``port_map`` (written port → port to use). Client endpoints are left alone."""
    moved = dict(config)
    for section in _LISTENER_SECTIONS:
        if section in config:
            moved[section] = _move_listeners(config[section], port_map)
    if "exporters" in config:
        moved["exporters"] = {cid: _move_listeners(body, port_map) if str(cid).split("/")[0] in _SERVER_EXPORTERS
                              else body for cid, body in config["exporters"].items()}
    if "service" in config and "telemetry" in config["service"]:
        moved["service"] = {**config["service"],
                            "telemetry": _move_listeners(config["service"]["telemetry"], port_map)}
    return moved


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class RunningStack:
    """The stack's processes (in start order) and where to reach them."""

    work: Path
    ports: Mapping[str, int]
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    prometheus_and_alertmanager: stack.LocalStack | None = None
    alert_sink: stack.AlertSink | None = None

    def endpoints(self) -> dict[str, str]:
        p = self.ports
        out = {
            "otlp_grpc": f"http://127.0.0.1:{p['otlp_grpc']}", "otlp_http": f"http://127.0.0.1:{p['otlp_http']}",
            "collector_health": f"http://127.0.0.1:{p['collector_health']}/",
            "collector_metrics": f"http://127.0.0.1:{p['collector_metrics']}/metrics",
            "collector_prometheus_exporter": f"http://127.0.0.1:{p['collector_prometheus']}/metrics",
            "jaeger": f"http://127.0.0.1:{p['jaeger']}", "victorialogs": f"http://127.0.0.1:{p['victorialogs']}",
            "prometheus": f"http://127.0.0.1:{p['prometheus']}",
            "alertmanager": f"http://127.0.0.1:{p['alertmanager']}",
        }
        if self.alert_sink is not None:
            out["alert_receiver"] = self.alert_sink.url
        return out

    def _all_processes(self) -> dict[str, subprocess.Popen]:
        found = dict(self.processes)
        if self.prometheus_and_alertmanager is not None:  # LocalStack starts Alertmanager, then Prometheus
            found.update(zip(("alertmanager", "prometheus"), self.prometheus_and_alertmanager.processes,
                             strict=False))
        return found

    def pids(self) -> dict[str, int]:
        return {name: process.pid for name, process in self._all_processes().items()}

    def failed(self) -> str | None:
        """The first process that exited, with the end of its log; None while all run."""
        for name, process in self._all_processes().items():
            if process.poll() is not None:
                return f"{name} exited with {process.returncode}:\n{_log_tail(self.work / f'{name}.log')}"
        return None

    def start_process(self, name: str, argv: list[str], env: Mapping[str, str], ready_url: str,
                      timeout: float) -> None:
        with open(self.work / f"{name}.log", "w") as log:
            self.processes[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.work,
                env={"HOME": str(Path.home()), "PATH": os.defpath, **env})
        deadline = time.monotonic() + timeout
        while not _ready(ready_url):
            if self.processes[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not become healthy at {ready_url} within {timeout:.0f}s:\n"
                                   f"{_log_tail(self.work / f'{name}.log')}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.prometheus_and_alertmanager is not None:
            self.prometheus_and_alertmanager.stop()
        for process in reversed(list(self.processes.values())):
            stack._stop(process)
        self.processes.clear()
        if self.alert_sink is not None:
            self.alert_sink.stop()


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _write_collector_config(work: Path, ports: Mapping[str, int]) -> Path:
    yaml = stack._yaml()
    shipped = yaml.safe_load((_assets.collector_dir() / "otelcol-config.yaml").read_text())
    port_map = {STANDARD_PORTS[name]: ports[name] for name in _COLLECTOR_LISTENERS}
    out = work / "otelcol.yaml"
    out.write_text(yaml.safe_dump(collector_config(shipped, port_map), sort_keys=False))
    return out


def start(work: Path, ports: Mapping[str, int], built: stack_build.Built, *,
          targets: Mapping[str, str] | None = None, demo_timing: bool = False,
          alertmanager_env: Mapping[str, str] | None = None, log_retention: str = DEFAULT_LOG_RETENTION,
          on_alert: Callable[[str, dict], None] | None = None, ready_timeout: float = 60.0) -> RunningStack:
    """Start every process, each healthy before the next; on failure stop what started and raise.

    ``alertmanager_env`` renders the shipped Alertmanager template (see :func:`stack.alertmanager_env`);
    without it every receiver points at a local :class:`stack.AlertSink` started here, which hands each
    notification (receiver path, JSON body) to ``on_alert``.
    ``targets`` (job → host:port) are extra pull endpoints for Prometheus's ``services`` job.
    """
    if stack.binaries() is None:
        raise FileNotFoundError("prometheus and prometheus-alertmanager are not installed "
                                "(Debian/Ubuntu: apt-get install prometheus prometheus-alertmanager)")
    work.mkdir(parents=True, exist_ok=True)
    running = RunningStack(work, dict(ports))
    p = ports
    try:
        running.start_process(
            "victorialogs", [str(built.victoria_logs), f"-httpListenAddr=127.0.0.1:{p['victorialogs']}",
                             f"-storageDataPath={work / 'victorialogs-data'}", f"-retentionPeriod={log_retention}",
                             "-loggerLevel=WARN"],
            {}, f"http://127.0.0.1:{p['victorialogs']}/health", ready_timeout)
        running.start_process(
            "jaeger", [str(built.jaeger), "--config", f"file:{_assets.collector_dir() / 'jaeger.yaml'}"],
            {"JAEGER_HOST": "127.0.0.1", "JAEGER_QUERY_PORT": str(p["jaeger"]),
             "JAEGER_QUERY_GRPC_PORT": str(p["jaeger_grpc"]), "JAEGER_OTLP_GRPC_PORT": str(p["jaeger_otlp"]),
             "JAEGER_HEALTH_PORT": str(p["jaeger_health"]), "JAEGER_METRICS_PORT": str(p["jaeger_metrics"])},
            f"http://127.0.0.1:{p['jaeger']}/api/services", ready_timeout)
        running.start_process(
            "collector", [str(built.collector), "--config", f"file:{_write_collector_config(work, p)}"],
            {"OTEL_COLLECTOR_HOST": "127.0.0.1", "JAEGER_OTLP_ENDPOINT": f"127.0.0.1:{p['jaeger_otlp']}",
             "VICTORIALOGS_URL": f"http://127.0.0.1:{p['victorialogs']}"},
            f"http://127.0.0.1:{p['collector_health']}/", ready_timeout)
        if alertmanager_env is None:
            running.alert_sink = stack.AlertSink(on_post=on_alert).start()
            alertmanager_env = stack.alertmanager_env(work, running.alert_sink.url, stack.free_ports(1)[0])
        running.prometheus_and_alertmanager = stack.LocalStack.start(
            work, targets=targets or {}, alertmanager_env_=alertmanager_env, prometheus_port=p["prometheus"],
            alertmanager_port=p["alertmanager"], ready_timeout=ready_timeout, demo_timing=demo_timing,
            collector={"otelcol-exporter": f"127.0.0.1:{p['collector_prometheus']}",
                       "otelcol": f"127.0.0.1:{p['collector_metrics']}"})
    except BaseException:
        running.stop()
        raise
    return running


@contextlib.contextmanager
def _stop_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``stop`` while inside; the previous handlers come back after."""
    previous = {sig: signal.signal(sig, lambda *_: stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_until_stopped(ports: Mapping[str, int], built: stack_build.Built, *, data_dir: Path | None,
                      show: Callable[[RunningStack], None], on_alert: Callable[[str, dict], None],
                      log_retention: str = DEFAULT_LOG_RETENTION, demo_timing: bool = False,
                      report: Callable[[str], None] = print) -> int:
    """Start the stack, ``show`` it, wait for SIGINT/SIGTERM (or a process exiting), stop everything.

    Returns 0 after a signal, 1 when a process exited on its own or the stack could not start.
    """
    stopping: list[bool] = []
    with contextlib.ExitStack() as cleanup:
        work = data_dir if data_dir is not None else Path(
            cleanup.enter_context(tempfile.TemporaryDirectory(prefix="otel-distro-stack-")))
        with _stop_signals(lambda: stopping.append(True)):
            try:
                running = start(work, ports, built, demo_timing=demo_timing, log_retention=log_retention,
                                on_alert=on_alert)
            except (RuntimeError, FileNotFoundError, OSError) as exc:
                report(f"otel-distro stack up: {exc}")
                return 1
            try:
                show(running)
                while not stopping:
                    failure = running.failed()
                    if failure is not None:
                        report(f"otel-distro stack up: {failure}")
                        return 1
                    time.sleep(0.3)
            finally:
                running.stop()
    return 0
