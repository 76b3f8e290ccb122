"""One Prometheus endpoint for a service that runs several worker processes (gunicorn, ``uvicorn --workers``).

Those servers start the distro in their parent process (gunicorn's master, uvicorn's supervisor), which binds
the pull port; the requests are served by the workers. So the parent's endpoint also serves its workers'
metrics: each worker serves its own registry on a loopback port the system picks and registers that port in a
directory the parent created. A forked worker knows the directory from its parent's memory, a spawned one from
OTEL_DISTRO_PROMETHEUS_WORKERS_DIR. A scrape of the parent collects every registered process; each sample then
carries the label ``process_pid``, so ``sum without (process_pid) (...)`` gives the service's totals. With no
worker registered, the endpoint serves the process's own metrics unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from otel_distro import settings
from otel_distro._internal_errors import report_internal_error

PID_LABEL = "process_pid"
WORKERS_DIR_VARIABLE = "OTEL_DISTRO_PROMETHEUS_WORKERS_DIR"
_SCRAPE_TIMEOUT_S = 5.0


class WorkersCollector:
    """A prometheus_client collector: this process's families and every registered worker's, merged by name."""

    def __init__(self, own: Any, directory: Path) -> None:
        self._own = own
        self._directory = directory

    def collect(self) -> Iterator[Any]:
        workers = registered_workers(self._directory)
        if not workers:
            yield from self._own.collect()
            return
        merged: dict[str, Any] = {}
        _add_labelled(merged, self._own.collect(), os.getpid())
        with ThreadPoolExecutor(max_workers=min(8, len(workers)), thread_name_prefix="otel-distro-scrape") as pool:
            for pid, families in pool.map(lambda item: (item[0], self._scrape(*item)), workers.items()):
                _add_labelled(merged, families, pid)
        yield from merged.values()

    def _scrape(self, pid: int, port: int) -> list[Any]:
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=_SCRAPE_TIMEOUT_S) as reply:
                return list(text_string_to_metric_families(reply.read().decode()))
        except OSError:
            if not _alive(pid):  # a worker that died without unregistering
                (self._directory / str(pid)).unlink(missing_ok=True)
            return []


def served_registry(own: Any, directory: Path) -> Any:
    """A registry serving ``own`` and, once some have registered in ``directory``, the workers' metrics."""
    from prometheus_client import CollectorRegistry

    served = CollectorRegistry(auto_describe=False)
    served.register(WorkersCollector(own, directory))
    return served


def _add_labelled(merged: dict[str, Any], families: Iterable[Any], pid: int) -> None:
    from prometheus_client.metrics_core import Metric

    for family in families:
        into = merged.get(family.name)
        if into is None:
            into = merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
        elif into.type != family.type:
            continue  # one process disagrees on the type: its series would make the family unreadable
        into.samples.extend(sample._replace(labels={**sample.labels, PID_LABEL: str(pid)})
                            for sample in family.samples)


def registered_workers(directory: Path) -> dict[int, int]:
    """Process id -> loopback port of every worker registered in ``directory``."""
    workers = {}
    try:
        entries = list(directory.iterdir())
    except OSError:
        return {}
    for entry in entries:
        try:
            workers[int(entry.name)] = int(entry.read_text())
        except (OSError, ValueError):  # being written, or not ours
            continue
    return workers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def create_directory() -> Path | None:
    """A fresh directory for workers to register in, announced to spawned workers through the environment."""
    try:
        directory = Path(tempfile.mkdtemp(prefix="otel-distro-prometheus-"))
    except OSError as err:
        report_internal_error("prometheus.workers", "no directory for worker processes' Prometheus "
                              "endpoints: only this process's metrics are served", err)
        return None
    # Read back by settings.py in a spawned worker (uvicorn --workers starts a new interpreter).
    settings.announce_to_children(WORKERS_DIR_VARIABLE, str(directory))
    return directory


def remove_directory(directory: Path) -> None:
    settings.announce_to_children(WORKERS_DIR_VARIABLE, None)
    shutil.rmtree(directory, ignore_errors=True)


def register(directory: Path, port: int) -> Path:
    """Announce this process's loopback endpoint; written whole (renamed into place) so a scrape never reads half."""
    final = directory / str(os.getpid())
    partial = directory / f".{os.getpid()}.partial"
    partial.write_text(str(port))
    partial.replace(final)
    return final
