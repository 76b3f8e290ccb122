"""Every use of a private SDK, exporter or framework attribute lives under this package, one module per seam.

A seam is a fast path that reaches into another package's private parts, paired with the public path that does
the same job more slowly. Each seam module:

- names the versions it was tested with and probes, once at start-up, that what it relies on is there
  (:func:`FastPath.probe`); a failed probe keeps the public path and says so once;
- runs its fast path behind one :class:`FastPath` guard: on any exception the call is retried on the public
  path, the seam switches to the public path for good, and the failure is reported once
  (:mod:`otel_distro._internal_errors`: raised instead under the project's own tests).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from otel_distro._internal_errors import report_internal_error

R = TypeVar("R")


class FastPath(Generic[R]):
    """A private fast path and its public fallback; the first failure of the fast path retires it."""

    __slots__ = ("_fast", "_public", "name")

    def __init__(self, name: str, fast: Callable[..., R] | None, public: Callable[..., R]) -> None:
        self.name = name
        self._fast = fast
        self._public = public

    @property
    def active(self) -> bool:
        """Whether calls still take the fast path."""
        return self._fast is not None

    def probe(self, check: Callable[[], Any]) -> bool:
        """Run ``check`` (raises or returns False when the private parts are not as tested); keep the fast path
        only if it passes."""
        if self._fast is None:
            return False
        try:
            ok = check() is not False
        except Exception as err:
            self._retire("its probe failed", err)
            return False
        if not ok:
            self._retire("its probe found the private parts not as tested", None)
        return ok

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        fast = self._fast
        if fast is not None:
            try:
                return fast(*args, **kwargs)
            except Exception as err:
                self._retire("it failed", err)
        return self._public(*args, **kwargs)

    def _retire(self, why: str, error: BaseException | None) -> None:
        self._fast = None
        report_internal_error(f"sdk_private.{self.name}",
                              f"the fast path {self.name} is off for this process because {why}; "
                              "the public SDK path is used instead", error)
