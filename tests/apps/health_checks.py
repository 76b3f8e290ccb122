"""One check of every kind, switched by files the test flips: shared by the FastAPI and Flask health apps."""

import asyncio
import os
import time
from pathlib import Path

from otel_distro import health

STATE = Path(os.environ["HEALTH_STATE_DIR"])
calls = {"cached": 0}


@health.check("database", timeout=1.0)
async def database() -> bool:
    return not (STATE / "database-down").exists()


@health.check("cache", timeout=1.0, critical=False)
def cache() -> tuple[bool, str]:
    if (STATE / "cache-down").exists():
        return False, "cache unreachable"
    return True, "ok"


@health.check("config", timeout=1.0)
def config() -> bool:
    if (STATE / "config-raises").exists():
        raise RuntimeError("config file unreadable")
    return True


@health.check("queue", timeout=0.3)
async def queue() -> bool:
    if (STATE / "queue-hangs").exists():
        await asyncio.sleep(30)
    return True


@health.check("disk", timeout=0.3)
def disk() -> bool:
    if (STATE / "disk-hangs").exists():
        time.sleep(2)
    return True


@health.check("slow-upstream", timeout=1.0, ttl=60.0)
def slow_upstream() -> tuple[bool, str]:
    calls["cached"] += 1
    return True, f"call {calls['cached']}"
