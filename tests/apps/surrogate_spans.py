"""Ends a batch of 101 spans, one named after a file whose name is not UTF-8, then exits (the distro flushes).

``os.fsdecode`` turns the byte 0xff of such a name into the lone surrogate U+DCFF, which no UTF-8
encoder accepts; the other spans and the bad span's attributes are plain.
"""

import os

from opentelemetry import trace

tracer = trace.get_tracer("files")
bad_name = os.fsdecode(b"report-\xff.csv")
for i in range(101):
    name = f"open {bad_name}" if i == 50 else f"open file-{i}.csv"
    with tracer.start_as_current_span(name, attributes={"file.index": i, "file.path": f"/data/{bad_name}"
                                                        if i == 50 else f"/data/file-{i}.csv"}) as span:
        span.add_event(name, {"note": bad_name if i == 50 else "plain"})
print("ended 101 spans", flush=True)
