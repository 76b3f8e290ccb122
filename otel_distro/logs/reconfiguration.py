"""The bridge stays on the root logger when the application re-configures logging.

``basicConfig`` does nothing when the root logger has a handler, and ``dictConfig``/``fileConfig`` may drop
root handlers: each is wrapped so that the bridge steps aside during the call and is put back after it.
"""

from __future__ import annotations

import functools
import logging
import logging.config
from collections.abc import Callable
from typing import Any


def keep_through_reconfiguration(current: Callable[[], logging.Handler | None],
                                 after: Callable[[], None]) -> None:
    """Wrap the three stdlib configuration functions (once): ``current()`` is the bridge, ``after()`` runs
    once it is back."""
    def guard(config_fn: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(config_fn, "_otel_distro_guarded", False):
            return config_fn

        @functools.wraps(config_fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            root = logging.getLogger()
            handler = current()
            present = handler is not None and handler in root.handlers
            if present:
                root.removeHandler(handler)  # type: ignore[arg-type]
            try:
                return config_fn(*args, **kwargs)
            finally:
                if present and handler not in root.handlers:
                    root.addHandler(handler)  # type: ignore[arg-type]
                if present:
                    after()

        guarded._otel_distro_guarded = True  # type: ignore[attr-defined]
        return guarded

    logging.basicConfig = guard(logging.basicConfig)
    logging.config.dictConfig = guard(logging.config.dictConfig)
    logging.config.fileConfig = guard(logging.config.fileConfig)
