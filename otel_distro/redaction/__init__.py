"""Secrets and PII masked before anything leaves the process: the rules, and the exporter wrappers applying them.

:mod:`otel_distro.redaction.rules` holds what is a secret and how it is masked; :mod:`otel_distro.redaction.exporters`
applies the rules to spans, log records and metrics on their way to an exporter. The wrappers are built on the
SDK's exporter classes: they are imported on first use, so the tools that only mask text (doctor, health) do not
load the SDK.
"""

from typing import Any

from otel_distro.redaction.rules import REDACTED, Redactor, from_settings, luhn_valid

_WRAPPERS = frozenset({"redact_pull_reader", "wrap_log_exporter", "wrap_metric_exporter", "wrap_span_exporter"})

__all__ = [
    "REDACTED",
    "Redactor",
    "from_settings",
    "luhn_valid",
    "redact_pull_reader",
    "wrap_log_exporter",
    "wrap_metric_exporter",
    "wrap_span_exporter",
]


def __getattr__(name: str) -> Any:
    if name in _WRAPPERS:
        from otel_distro.redaction import exporters

        return getattr(exporters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
