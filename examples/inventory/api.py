"""The inventory API (FastAPI): reads items with SQLAlchemy, counts views in Redis, asks the pricing service.

    PRICING_URL=http://127.0.0.1:5001 REDIS_URL=redis://127.0.0.1:6379/0 OTEL_SERVICE_NAME=inventory-api \\
        opentelemetry-instrument uvicorn examples.inventory.api:app --port 8001
"""

from __future__ import annotations

import os

import httpx
from fastapi import FastAPI, HTTPException

from examples.inventory import store

PRICING_URL = os.environ.get("PRICING_URL", "http://127.0.0.1:5001")
app = FastAPI()
store.seed()


@app.get("/items/{item_id}")
async def item(item_id: int) -> dict:
    found = store.find(item_id)
    if found is None:
        raise HTTPException(404, "no such item")
    views = store.count_view(item_id)
    async with httpx.AsyncClient(base_url=PRICING_URL, timeout=10) as client:
        price = (await client.get(f"/prices/{item_id}")).json()
    return {"id": found.id, "name": found.name, "views": views, "price": price}


@app.get("/ping")
async def ping() -> dict:
    return {"ok": True}


@app.get("/fail")
async def fail() -> dict:
    raise ValueError("inventory ledger unreadable")
