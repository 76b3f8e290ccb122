"""A small shop service: what a real FastAPI app looks like to the distro.

Run it with no code change for telemetry:
    OTEL_SERVICE_NAME=shop opentelemetry-instrument uvicorn examples.fastapi_app.main:app
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, HTTPException

from otel_distro import business, health

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop")

app = FastAPI(title="shop")

_ITEMS = {1: {"id": 1, "name": "kettle", "price": 24.5}, 2: {"id": 2, "name": "teapot", "price": 31.0}}

# Business KPIs (the Grafana "Business KPIs" dashboard reads them). Declared here;
# a file named by OTEL_DISTRO_BUSINESS_METRICS_FILE may declare them first.
orders_created = business.counter("shop.orders.created", unit="{order}",
                                  description="Orders created", attributes=["channel"])
cart_value = business.histogram("shop.cart.value", unit="{USD}", description="Value of an order's cart",
                                 attributes=["channel"], buckets=[5, 10, 25, 50, 100, 250])


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
async def create_order(item_id: int = 1, quantity: int = 1, channel: str = "web") -> dict:
    item = _ITEMS.get(item_id)
    if item is None:
        raise HTTPException(status_code=404, detail="no such item")
    total = round(item["price"] * quantity, 2)
    orders_created.add(1, channel=channel)
    cart_value.record(total, channel=channel)
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


@app.post("/ask")
async def ask(question: str = "What does OpenTelemetry give a Python service?",
              model: str = "gpt-4o-mini") -> dict:
    """Ask the LLM (OPENAI_BASE_URL, e.g. the local test server of examples/genai_app)."""
    from openai import AsyncOpenAI, OpenAIError

    client = AsyncOpenAI(max_retries=0, api_key=_openai_key())
    try:
        reply = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": question}])
    except OpenAIError as err:
        log.warning("LLM call failed: %s", type(err).__name__)
        raise HTTPException(status_code=502, detail="LLM call failed") from None
    finally:
        await client.close()
    usage = reply.usage
    return {"answer": reply.choices[0].message.content, "model": reply.model,
            "input_tokens": usage.prompt_tokens if usage else None,
            "output_tokens": usage.completion_tokens if usage else None}


def _openai_key() -> str:
    import os

    return os.environ.get("OPENAI_API_KEY", "local-test-key")  # the local test server ignores it
