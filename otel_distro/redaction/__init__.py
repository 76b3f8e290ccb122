"""Secrets and PII masked before anything leaves the process: the rules, and the exporter wrappers applying them.

:mod:`otel_distro.redaction.rules` holds what is a secret and how it is masked; :mod:`otel_distro.redaction.exporters`
applies the rules to spans, log records and metrics on their way to an exporter.
"""

from otel_distro.redaction.exporters import (
    redact_pull_reader,
    wrap_log_exporter,
    wrap_metric_exporter,
    wrap_span_exporter,
)
from otel_distro.redaction.rules import REDACTED, Redactor, from_settings, luhn_valid

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
