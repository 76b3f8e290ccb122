"""A prefork pool in miniature: N children forked one after another, each recycled after one task.

The parent keeps a background thread emitting spans and log records while it
forks, so a fork can land while a batch processor, the logging module or the
exporter holds a lock. Each child does one "task" (a span, a log record, a
counter increment), flushes the way the Celery integration does for a pool
child (bounded, then ``os._exit``: atexit never runs) and exits.
Prints ``done <n>`` when every child has been reaped.
"""

import logging
import os
import sys
import threading
import time

from opentelemetry import metrics, trace

import otel_distro
from otel_distro.integrations import celery as celery_integration

count = int(sys.argv[1])
otel_distro.configure(service_name="recycle", system_metrics=False)
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("recycle")
tracer = trace.get_tracer("recycle")
tasks = metrics.get_meter("recycle").create_counter("recycle.tasks", unit="{task}")
stop = threading.Event()


def parent_noise() -> None:
    while not stop.is_set():
        with tracer.start_as_current_span("parent-tick"):
            log.info("parent tick")
        time.sleep(0.001)


noise = threading.Thread(target=parent_noise, daemon=True)
noise.start()
for n in range(count):
    pid = os.fork()
    if pid == 0:
        status = 0
        import faulthandler
        faulthandler.dump_traceback_later(8, exit=False)  # stacks on stderr if it hangs
        try:
            with tracer.start_as_current_span("task", attributes={"task.n": n}):
                log.info("task %d", n)
                tasks.add(1)
            if not celery_integration.flush(10.0):
                status = 3
        except BaseException:  # never return into the parent's loop
            status = 4
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        print(f"child {n} exited with status {status}", flush=True)
        sys.exit(1)
stop.set()
noise.join(5)
print(f"done {count}", flush=True)
otel_distro.shutdown()
