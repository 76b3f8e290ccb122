"""The pricing service (Flask): reads prices with SQLAlchemy, counts lookups in Redis, checks the API is up.

    INVENTORY_URL=http://127.0.0.1:8001 REDIS_URL=redis://127.0.0.1:6379/0 OTEL_SERVICE_NAME=pricing \\
        opentelemetry-instrument flask --app examples.inventory.pricing run --port 5001
"""

from __future__ import annotations

import os

import requests
from flask import Flask, abort, jsonify

from examples.inventory import store

INVENTORY_URL = os.environ.get("INVENTORY_URL", "http://127.0.0.1:8001")
app = Flask(__name__)
store.seed()


@app.get("/prices/<int:item_id>")
def price(item_id: int):
    found = store.find(item_id)
    if found is None:
        abort(404)
    store.count_view(-item_id)
    requests.get(f"{INVENTORY_URL}/ping", timeout=10).raise_for_status()
    return jsonify(cents=found.price_cents, currency="EUR")
