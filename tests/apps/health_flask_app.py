"""A Flask app with one check of every kind (tests/apps/health_checks.py)."""

from flask import Flask

from otel_distro import health
from tests.apps import health_checks  # noqa: F401  (registers the checks)

app = Flask(__name__)

health.install(app)


@app.get("/work")
def work() -> dict:
    return {"ok": True}
