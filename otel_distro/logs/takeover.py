"""The one bridge of the process, and the console it takes over.

With a distro console (OTEL_DISTRO_LOG_FORMAT json or text) the root logger's plain stdout/stderr handlers
step aside so that each record is printed once - by the bridge, in the console format - and come back when
the bridge is removed.
"""

from __future__ import annotations

import functools
import logging

from opentelemetry.sdk._logs import LoggerProvider

from otel_distro.console import ConsoleWriter, is_console_handler
from otel_distro.logs.bridge import BridgeHandler
from otel_distro.logs.delivery import Losses
from otel_distro.logs.reconfiguration import keep_through_reconfiguration

_bridge: BridgeHandler | None = None
_stepped_aside: list[logging.Handler] = []


def bridge() -> BridgeHandler | None:
    """The installed bridge handler, if any."""
    return _bridge


def install_bridge(provider: LoggerProvider, level: int, *, export: bool = True,
                   console: ConsoleWriter | None = None, losses: Losses | None = None) -> BridgeHandler:
    """Put the OpenTelemetry handler on the root logger, once per process."""
    global _bridge
    if _bridge is not None:
        return _bridge
    handler = BridgeHandler(level, provider, export=export, console=console, losses=losses)
    logging.getLogger().addHandler(handler)
    own = logging.getLogger("otel_distro")
    if not own.propagate:  # the distro's diagnostics print its records: the bridge only exports them
        own.addHandler(handler)
        handler.own_records_printed = False
    keep_through_reconfiguration(bridge, take_over_console)
    _bridge = handler
    take_over_console()
    return handler


def take_over_console() -> None:
    """With a distro console, the root's plain stdout/stderr handlers step aside."""
    handler = _bridge
    if handler is None or handler.console is None:
        return
    root = logging.getLogger()
    for other in list(root.handlers):
        if other is not handler and is_console_handler(other):
            root.removeHandler(other)
            if not _stepped_aside:  # write where the app's console went
                handler.console.stream = functools.partial(getattr, other, "stream")
            _stepped_aside.append(other)


def remove_bridge() -> None:
    global _bridge
    if _bridge is not None:
        handler, _bridge = _bridge, None
        root = logging.getLogger()
        root.removeHandler(handler)
        logging.getLogger("otel_distro").removeHandler(handler)
        handler.stop()
        for other in _stepped_aside:
            if other not in root.handlers:
                root.addHandler(other)
        _stepped_aside.clear()
