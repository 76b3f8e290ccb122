"""A Flask app with a sync and an async health check, switched by files so the test can flip them."""

import os
from pathlib import Path

from flask import Flask

from otel_distro import health

STATE = Path(os.environ["HEALTH_STATE_DIR"])
registry = health.HealthRegistry()
registry.add("database", lambda: not (STATE / "database-down").exists(), timeout=1.0)


async def cache() -> tuple[bool, str]:
    return (False, "cache unreachable") if (STATE / "cache-down").exists() else (True, "ok")


registry.add("cache", cache, timeout=1.0, critical=False)

app = Flask(__name__)
health.install(app, health_registry=registry)


@app.get("/")
def index() -> str:
    return "shop"
