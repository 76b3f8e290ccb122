"""The process's own metrics and CPython's collector, as the semantic conventions name them.

Observed at each collection (psutil and ``gc``): ``process.cpu.time`` and
``process.cpu.utilization`` by ``cpu.mode``, ``process.memory.usage``,
``process.memory.virtual``, ``process.open_file_descriptor.count``,
``process.thread.count``, ``process.context_switches`` by
``process.context_switch.type``, and ``cpython.gc.collections``,
``cpython.gc.collected_objects``, ``cpython.gc.uncollectable_objects`` by
``cpython.gc.generation``.

The contrib system-metrics instrumentor observes the same, but importing it
loads the instrumentor framework (packaging, wrapt, dependency checks): about
20 ms of start-up, more than the rest of ``configure()``, for these callbacks.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from otel_distro._internal_errors import report_internal_error
from otel_distro.version import __version__

SCOPE_NAME = "otel_distro.process"
_CPU_MODES = ("user", "system")
_SWITCH_TYPES = ("voluntary", "involuntary")


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


class ProcessMetrics:
    """Registers the observable instruments on a meter provider; the callbacks read the current process."""

    def __init__(self, provider: MeterProvider) -> None:
        self._process = psutil.Process()
        self._pid = os.getpid()
        self._cpus = _available_cpus()
        self._last_cpu = self._cpu_sample()
        meter = provider.get_meter(SCOPE_NAME, __version__)
        for kind, name, read, unit, description in self._instruments():
            create = getattr(meter, f"create_observable_{kind}")
            create(name, [self._guarded(name, read)], unit=unit, description=description)

    def _instruments(self) -> list[tuple[str, str, Callable[[], Iterable[Observation]], str, str]]:
        """(kind, name, reading, unit, description) of each instrument this process can observe."""
        made: list[tuple[str, str, Callable[[], Iterable[Observation]], str, str]] = [
            ("counter", "process.cpu.time", self._cpu_time, "s", "CPU seconds used by the process, by mode."),
            ("gauge", "process.cpu.utilization", self._cpu_utilization, "1",
             "CPU time used since the last collection, divided by the elapsed time "
             "and by the number of CPUs the process may run on."),
            ("up_down_counter", "process.memory.usage", self._memory_usage, "By",
             "Physical memory in use by the process (resident set size)."),
            ("up_down_counter", "process.memory.virtual", self._memory_virtual, "By",
             "Virtual memory committed by the process."),
            ("up_down_counter", "process.thread.count", self._threads, "{thread}", "Threads of the process."),
            ("counter", "process.context_switches", self._context_switches, "{context_switch}",
             "Times the process was switched out, by kind."),
            ("counter", "cpython.gc.collections", _gc_stat("collections"), "{collection}",
             "Collections of each generation since the interpreter started."),
            ("counter", "cpython.gc.collected_objects", _gc_stat("collected"), "{object}",
             "Objects the collector freed since the interpreter started, by generation."),
            ("counter", "cpython.gc.uncollectable_objects", _gc_stat("uncollectable"), "{object}",
             "Objects the collector found but could not free since the interpreter started."),
        ]
        if hasattr(self._process, "num_fds"):  # not on Windows
            made.append(("up_down_counter", "process.open_file_descriptor.count", self._open_fds,
                         "{file_descriptor}", "File descriptors open in the process."))
        return made

    # A forked child inherits the parent's psutil.Process: it would report the parent.
    def _current(self) -> psutil.Process:
        if os.getpid() != self._pid:
            self._process, self._pid = psutil.Process(), os.getpid()
            self._last_cpu = self._cpu_sample()
        return self._process

    def _cpu_sample(self) -> tuple[float, Any]:
        return time.monotonic(), self._process.cpu_times()

    def _guarded(self, name: str, read: Callable[[], Iterable[Observation]]
                 ) -> Callable[[CallbackOptions], Iterator[Observation]]:
        """A callback that observes nothing, and says so once, when reading fails (never every collection)."""

        def callback(options: CallbackOptions) -> Iterator[Observation]:
            try:
                observed = list(read())
            except Exception as err:
                report_internal_error(f"process_metrics.{name}", f"{name} is not observed in this process", err)
                return iter(())
            return iter(observed)

        return callback

    def _cpu_time(self) -> Iterator[Observation]:
        times = self._current().cpu_times()
        for mode in _CPU_MODES:
            yield Observation(getattr(times, mode), {"cpu.mode": mode})

    def _cpu_utilization(self) -> Iterator[Observation]:
        self._current()
        (then, before), (now, after) = self._last_cpu, self._cpu_sample()
        self._last_cpu = (now, after)
        elapsed = (now - then) * self._cpus
        for mode in _CPU_MODES:
            used = getattr(after, mode) - getattr(before, mode)
            yield Observation(max(used, 0.0) / elapsed if elapsed > 0 else 0.0, {"cpu.mode": mode})

    def _memory_usage(self) -> Iterator[Observation]:
        yield Observation(self._current().memory_info().rss)

    def _memory_virtual(self) -> Iterator[Observation]:
        yield Observation(self._current().memory_info().vms)

    def _open_fds(self) -> Iterator[Observation]:
        yield Observation(self._current().num_fds())

    def _threads(self) -> Iterator[Observation]:
        yield Observation(self._current().num_threads())

    def _context_switches(self) -> Iterator[Observation]:
        switches = self._current().num_ctx_switches()
        for kind in _SWITCH_TYPES:
            yield Observation(getattr(switches, kind), {"process.context_switch.type": kind})


def _gc_stat(stat: str) -> Callable[[], Iterator[Observation]]:
    def read() -> Iterator[Observation]:
        for generation, stats in enumerate(gc.get_stats()):
            yield Observation(stats[stat], {"cpython.gc.generation": generation})

    return read


def start(provider: MeterProvider) -> ProcessMetrics:
    return ProcessMetrics(provider)
