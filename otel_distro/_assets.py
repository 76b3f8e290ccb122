"""Where the files the tools ship with live: the Collector stack configs and the demo's example services.

In a checkout they are the repository's ``collector/`` and ``examples/``; from an installed wheel they must be
package data. The tools (demo, stack, collector check) find them only through these functions.
"""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def collector_dir() -> Path:
    """The folder holding otelcol-config.yaml, prometheus/, alertmanager/, grafana/, k8s/ ..."""
    return _CHECKOUT / "collector"


def examples_root() -> Path:
    """The folder whose child ``examples`` package holds the demo's services (put it on PYTHONPATH)."""
    return _CHECKOUT
