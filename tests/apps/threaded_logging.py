"""Logs from many threads at once, as fast as they can: ``threaded_logging.py THREADS LINES``.

Every line says which thread and which number it is (``line <thread> <i>``), so a test can tell
exactly which records reached the console and the receiver. The app configures nothing but the
root level; at exit the distro flushes what it holds.
"""

import logging
import sys
import threading

threads, lines = int(sys.argv[1]), int(sys.argv[2])
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("load")
start = threading.Barrier(threads)


def produce(thread: int) -> None:
    start.wait()
    for i in range(lines):
        log.info("line %d %d", thread, i)


workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(f"created {threads * lines}", file=sys.stderr, flush=True)
