"""Creates N spans, N log records and N counter increments, then waits to be signalled.

Batch delays are set long by the test, so everything is still pending when
SIGTERM arrives: what reaches the receiver was flushed by the shutdown path.
"""

import logging
import sys
import time

from opentelemetry import metrics, trace

count = int(sys.argv[1])
logging.getLogger().setLevel(logging.INFO)
tracer = trace.get_tracer("burst")
counter = metrics.get_meter("burst").create_counter("burst.items", unit="{item}")
log = logging.getLogger("burst")
for i in range(count):
    with tracer.start_as_current_span("item", attributes={"i": i}):
        log.info("item %d", i)
        counter.add(1)
print("ready", flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    time.sleep(0.1)
