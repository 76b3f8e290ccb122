"""SQLAlchemy: one CLIENT span per statement, with the stable ``db.operation.name``.

Contrib's SQLAlchemy instrumentation traces each statement; the driver's instrumentation (psycopg, psycopg2, asyncpg,
pymysql ... all in the ``all`` extra) traces it again, as a sibling span, and its duration is counted twice in
``db.client.operation.duration``. :func:`instrument` listens to SQLAlchemy's ``do_execute`` dialect events (they run
the driver's ``cursor.execute`` between ``before_cursor_execute``, where contrib opens its span, and
``after_cursor_execute``): when contrib's span is open, the distro runs the statement itself with instrumentation
suppressed, so the driver's instrumentation stays quiet for it; statements outside SQLAlchemy keep their driver spans.
It also sets that span's ``db.operation.name`` to the statement's operation (contrib 0.66 writes its span name there,
``"SELECT shop"`` when the URL names a database).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from opentelemetry.instrumentation.utils import suppress_instrumentation

from otel_distro._sdk_private import sqlalchemy_statement

_OPERATION = "db.operation.name"
_LEADING_COMMENT = re.compile(r"^\s*/\*.*?\*/", re.DOTALL)


def _operation(statement: str) -> str | None:
    words = _LEADING_COMMENT.sub("", statement).split(None, 1)
    return words[0] if words else None


def _quiet_driver(context: Any, statement: str) -> bool:
    """Whether contrib's span covers this statement (then its operation name is put right)."""
    span = sqlalchemy_statement.statement_span(context)
    if span is None:
        return False
    operation = _operation(statement) if isinstance(statement, str) else None
    if operation is not None and _OPERATION in (span.attributes or {}):
        span.set_attribute(_OPERATION, operation)
    return True


def _run_quietly(context: Any, statement: str, run: Callable[[], Any]) -> bool:
    if context is None or not _quiet_driver(context, statement):
        return False  # SQLAlchemy runs it as usual
    with suppress_instrumentation():
        run()
    return True


def _do_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    return _run_quietly(context, statement,
                        lambda: context.dialect.do_execute(cursor, statement, parameters, context))


def _do_executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    return _run_quietly(context, statement,
                        lambda: context.dialect.do_executemany(cursor, statement, parameters, context))


def _do_execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    return _run_quietly(context, statement, lambda: context.dialect.do_execute_no_params(cursor, statement, context))


def instrument() -> None:
    """Listen on every engine's dialect (once contrib's instrumentation is applied)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not sqlalchemy_statement.probe():
        return
    for name, listener in (("do_execute", _do_execute), ("do_executemany", _do_executemany),
                           ("do_execute_no_params", _do_execute_no_params)):
        if not event.contains(Engine, name, listener):
            event.listen(Engine, name, listener)
