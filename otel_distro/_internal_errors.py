"""One policy for the distro's own errors: reported once, swallowed in production, raised under our tests.

Telemetry must never break the host application, so a failure inside the distro is caught where it happens.
Caught silently, though, it would hide from the operator and from our own tests alike. Every such place calls
:func:`report_internal_error`: the first occurrence of each ``key`` is logged on the ``otel_distro`` logger
(which the distro keeps wired to stderr), later ones are only counted, and when the project's own test suite has
switched on :func:`raise_internal_errors` the error is raised instead, so a swallowed error fails a test.
"""

from __future__ import annotations

import logging
import threading

_log = logging.getLogger("otel_distro")
_lock = threading.Lock()
_counts: dict[str, int] = {}
_raise = False


def raise_internal_errors(enabled: bool = True) -> None:
    """Under the project's own tests: make every reported internal error raise (tests/conftest.py)."""
    global _raise
    _raise = enabled


def report_internal_error(key: str, message: str, error: BaseException | None = None) -> None:
    """Report an internal error once per ``key``; count the rest; raise it when tests asked for that.

    ``message`` says what failed and what the distro does instead (for example "fell back to the SDK's
    encoder"). Call it from inside the ``except`` block that caught ``error``.
    """
    with _lock:
        seen = _counts.get(key, 0)
        _counts[key] = seen + 1
    if _raise:
        if error is not None:
            raise error
        raise AssertionError(f"otel-distro internal error [{key}]: {message}")
    if seen == 0:
        detail = f": {type(error).__name__}: {error}" if error is not None else ""
        _log.warning("otel-distro: %s%s (reported once)", message, detail)


def internal_error_counts() -> dict[str, int]:
    """How many times each kind of internal error happened in this process (doctor, tests)."""
    with _lock:
        return dict(_counts)


def _reset_for_tests() -> None:
    with _lock:
        _counts.clear()


class OnceWarnings:
    """Warnings about the user's input (an unpriced model, an undeclared attribute), each said once per key.

    Not an internal error: these never raise, not even under our tests. One instance per owner (a price
    table, a business instrument), so each owner says its own warnings once.
    """

    def __init__(self, log: logging.Logger = _log) -> None:
        self._log = log
        self._said: set[object] = set()
        self._lock = threading.Lock()

    def warn(self, key: object, message: str, *args: object) -> bool:
        """Log ``message % args`` the first time ``key`` is seen; True when it was logged now."""
        with self._lock:
            if key in self._said:
                return False
            self._said.add(key)
        self._log.warning(message, *args)
        return True
