"""Seam: the span contrib's SQLAlchemy instrumentation keeps open while a statement runs.

Tested with opentelemetry-instrumentation-sqlalchemy 0.66b0 and SQLAlchemy 2.0. Its ``before_cursor_execute``
listener starts a CLIENT span for the statement and keeps it, not current, on the execution context as
``_otel_span`` until ``after_cursor_execute``/``handle_error`` end it. ``integrations/sqlalchemy.py`` reads it while
the driver runs the statement, to keep the driver's own instrumentation quiet for that statement and to correct the
span's ``db.operation.name``.

Public path: no span known (the driver's instrumentation traces the statement too, as contrib has it).
"""

from __future__ import annotations

from typing import Any

from otel_distro._sdk_private import FastPath

_ATTRIBUTE = "_otel_span"


def _open_span(context: Any) -> Any:
    span = getattr(context, _ATTRIBUTE, None)
    return span if span is not None and span.is_recording() else None


def _unknown(context: Any) -> Any:
    return None


def new_guards() -> tuple[FastPath[Any]]:
    return (FastPath("sqlalchemy_statement", _open_span, _unknown),)


(OPEN_SPAN,) = new_guards()


def probe() -> bool:
    """Whether the installed instrumentation keeps its span where this seam looks (run once, when applied)."""
    def check() -> bool:
        from opentelemetry.instrumentation.sqlalchemy import engine

        return _ATTRIBUTE in engine.EngineTracer._before_cur_exec.__code__.co_names

    return OPEN_SPAN.probe(check)


def statement_span(context: Any) -> Any:
    """The instrumentation's recording span of the statement ``context`` runs, or None."""
    return OPEN_SPAN(context)
