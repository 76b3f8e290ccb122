"""A FastAPI app with one check of every kind (tests/apps/health_checks.py)."""

from fastapi import FastAPI

from otel_distro import health
from tests.apps import health_checks  # noqa: F401  (registers the checks)

app = FastAPI()

health.install(app)


@app.get("/work")
async def work() -> dict:
    return {"ok": True}
