"""Forks two children; every process stays up until the marker file given as argv[1] is removed (at most 60 s).

Started under opentelemetry-instrument by tests/test_remote_config.py: each process must report to the OpAMP
server as its own instance.
"""

import os
import sys
import time

marker = sys.argv[1]


def wait_for_the_test() -> None:
    deadline = time.monotonic() + 60
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.05)


children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        wait_for_the_test()
        os._exit(0)
    children.append(pid)
print("forked", *children, flush=True)
wait_for_the_test()
for pid in children:
    os.waitpid(pid, 0)
