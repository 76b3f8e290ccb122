"""A small shop service: what a real FastAPI app looks like to the distro.

Run it with no code change for telemetry:
    OTEL_SERVICE_NAME=shop opentelemetry-instrument uvicorn examples.fastapi_app.main:app
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, HTTPException

from otel_distro import health

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop")

app = FastAPI(title="shop")

_ITEMS = {1: {"id": 1, "name": "kettle", "price": 24.5}, 2: {"id": 2, "name": "teapot", "price": 31.0}}


@health.check("catalog", timeout=1.0)
def catalog_loaded() -> tuple[bool, str]:
    return bool(_ITEMS), f"{len(_ITEMS)} items"


health.install(app)  # GET /health (liveness) and /health/ready (the checks above)


@app.get("/items")
async def list_items() -> list[dict]:
    log.info("listing %d items", len(_ITEMS))
    return list(_ITEMS.values())


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict:
    item = _ITEMS.get(item_id)
    if item is None:
        log.warning("item %s not found", item_id)
        raise HTTPException(status_code=404, detail="no such item")
    log.info("item %s served", item_id)
    return item


@app.post("/orders")
async def create_order(item_id: int = 1, quantity: int = 1) -> dict:
    item = _ITEMS.get(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="no such item")
    total = round(item["price"] * quantity, 2)
    log.info("order created", extra={"item_id": item_id, "quantity": quantity, "total": total})
    return {"item_id": item_id, "quantity": quantity, "total": total}


@app.get("/slow")
async def slow(ms: int = 200) -> dict:
    await asyncio.sleep(min(ms, 5000) / 1000)
    return {"slept_ms": ms}


@app.get("/fail")
async def fail() -> dict:
    log.error("about to fail on purpose")
    raise RuntimeError("payment backend unavailable")
