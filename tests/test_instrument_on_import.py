"""Instrumentations wait for their library's first import: an installed but unused library costs nothing, and
one imported late is instrumented all the same."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import BIN, telemetry_env

pytestmark = pytest.mark.integration

CLIENT = 3  # OTLP SpanKind

# Not `requests`: the SDK's OTLP/HTTP exporter (1.45.1) imports it itself at start-up.
PROGRAM = """
import json, sys
unused = ["flask", "celery", "openai", "sqlalchemy", "redis",
          "opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.openai_v2",
          "opentelemetry.instrumentation.sqlalchemy"]
print(json.dumps({"loaded_at_start": [name for name in unused if name in sys.modules]}))
from sqlalchemy import create_engine, text   # imported late: instrumented on this import
engine = create_engine("sqlite://")
with engine.connect() as connection:
    connection.execute(text("SELECT 1")).scalar()
"""


def test_unused_libraries_are_not_loaded_and_a_late_import_is_instrumented(receiver) -> None:
    done = subprocess.run([str(BIN / "opentelemetry-instrument"), str(BIN / "python"), "-c", PROGRAM],
                          env=telemetry_env(receiver.endpoint, OTEL_SERVICE_NAME="late-import"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == '{"loaded_at_start": []}'
    receiver.wait_for(lambda: [s for s in receiver.spans() if s.kind == CLIENT
                               and s.attributes.get("db.system.name") == "sqlite"], what="the late library's span")
    (query,) = [s for s in receiver.spans() if s.attributes.get("db.query.text") == "SELECT 1"]
    assert query.scope == "opentelemetry.instrumentation.sqlalchemy"
