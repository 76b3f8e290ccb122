"""The same small shop as a Flask app (WSGI), for services that are not async.

    OTEL_SERVICE_NAME=shop-flask opentelemetry-instrument flask --app examples.flask_app.app run
"""

from __future__ import annotations

import logging

from flask import Flask, abort, jsonify

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
log = logging.getLogger("shop-flask")

app = Flask(__name__)

_ITEMS = {1: {"id": 1, "name": "kettle", "price": 24.5}}


@app.get("/health")
def health():
    return jsonify(status="ok")


@app.get("/items/<int:item_id>")
def get_item(item_id: int):
    item = _ITEMS.get(item_id)
    if item is None:
        abort(404)
    log.info("item %s served", item_id)
    return jsonify(item)


@app.get("/fail")
def fail():
    raise RuntimeError("payment backend unavailable")
