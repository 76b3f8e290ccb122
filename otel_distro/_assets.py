"""Where the files the tools ship with live: the Collector stack configs and the demo's example services.

In a checkout they are the repository's ``collector/`` and ``examples/``. A built wheel carries copies of both
under ``otel_distro/_shipped/`` (setup.py's build step puts them there), which an installed package uses. The
tools (demo, stack, collector check) find them only through these functions.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
SHIPPED = _PACKAGE / "_shipped"  # in an installed wheel
_CHECKOUT = _PACKAGE.parent


def _root() -> Path:
    return SHIPPED if (SHIPPED / "collector").is_dir() else _CHECKOUT


def collector_dir() -> Path:
    """The folder holding otelcol-config.yaml, prometheus/, alertmanager/, grafana/, k8s/ ..."""
    return _root() / "collector"


def examples_root() -> Path:
    """The folder whose child ``examples`` package holds the demo's services (put it on PYTHONPATH)."""
    return _root()
