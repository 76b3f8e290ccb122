"""A FastAPI service whose health check fails quoting a DSN, and whose metrics carry secret attributes.

Started under opentelemetry-instrument (Prometheus pull endpoint) by tests/test_redaction_surfaces.py.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry import metrics

from otel_distro import health

app = FastAPI()
health.install(app)
logins = metrics.get_meter("surfaces").create_counter("app.logins")


@health.check("database", timeout=2.0)
def database() -> bool:
    raise ConnectionError("could not connect to postgres://app:S3cretPw9@db.internal:5432/shop "
                          "(token=Tok3nValue9)")


@app.get("/login")
async def login() -> dict:
    logins.add(1, {"session_id": "S3ss10nValue", "user": "jane.doe@example.com", "route": "/login",
                   "Bearer abcdefghijklmnop123": "key-is-a-secret"})
    return {"ok": True}
