"""Items that wait to be handled together: the middleware's finished SERVER spans, its histogram points."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

from otel_distro._internal_errors import report_internal_error


def hand_on_each(waiting: collections.deque[Any], lock: threading.Lock, handle: Callable[[Any], None], *,
                 blocking: bool, error_key: str, error_message: str) -> None:
    """Give each waiting item to ``handle``, oldest first, holding ``lock``: without ``blocking``, a thread that
    finds it taken leaves the items to the one that holds it. One item's failure is reported; the others go on."""
    if not lock.acquire(blocking):
        return
    try:
        while waiting:
            item = waiting.popleft()
            try:
                handle(item)
            except Exception as err:
                report_internal_error(error_key, error_message, err)
    finally:
        lock.release()
