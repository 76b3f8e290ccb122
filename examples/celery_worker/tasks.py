"""A small order-processing worker: what a real Celery app looks like to the distro.

Run it with no code change for telemetry:
    OTEL_SERVICE_NAME=orders-worker opentelemetry-instrument \
        celery -A examples.celery_worker.tasks worker --pool=prefork --concurrency=2
and send it work with ``python -m examples.celery_worker.send`` (also under
``opentelemetry-instrument`` to get the producer spans in the same traces).

The broker is ``CELERY_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0``); by
default kombu's filesystem transport under ``CELERY_FS_BROKER_DIR``, so the
example runs with no broker server at all.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from celery import Celery
from celery.utils.log import get_task_logger

log = get_task_logger(__name__)

BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
# Seconds before the retried run of ``reserve_stock``.
RETRY_DELAY_S = float(os.environ.get("EXAMPLE_RETRY_DELAY", "0.2"))

app = Celery("orders", broker=BROKER_URL)
app.conf.update(
    worker_prefetch_multiplier=1,
    task_acks_late=True,
    broker_connection_retry_on_startup=True,
)



def _make_filesystem_puts_atomic() -> None:
    """kombu's filesystem transport creates a message file, then writes it: a worker
    polling at that moment takes the empty file (JSONDecodeError). Write the message
    under a name the worker skips, then rename it into place (atomic on POSIX)."""
    import uuid
    from time import monotonic

    from kombu.transport import filesystem
    from kombu.utils.json import dumps

    def put(self, queue, payload, **kwargs):  # kombu's Channel._put
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".partial-{name}")  # not "<id>.<queue>.msg"
        with open(partial, "wb") as out:
            out.write(dumps(payload).encode())
        os.replace(partial, final)

    filesystem.Channel._put = put


if BROKER_URL.startswith("filesystem"):
    _folder = Path(os.environ.get("CELERY_FS_BROKER_DIR",
                                  os.path.join(tempfile.gettempdir(), "celery-example-broker")))
    for _sub in ("queue", "processed", "control"):
        (_folder / _sub).mkdir(parents=True, exist_ok=True)
    app.conf.broker_transport_options = {
        "data_folder_in": str(_folder / "queue"),
        "data_folder_out": str(_folder / "queue"),
        "store_processed": True,
        "processed_folder": str(_folder / "processed"),
        "control_folder": str(_folder / "control"),
        "polling_interval": 0.1,
    }
    # Broadcast (remote control) is not what this transport is for.
    app.conf.worker_enable_remote_control = False
    _make_filesystem_puts_atomic()


@app.task
def price_order(order_id: int, quantity: int, unit_price: float) -> float:
    """Succeeds."""
    total = round(quantity * unit_price, 2)
    log.info("order %s priced at %.2f", order_id, total)
    return total


@app.task
def charge_card(order_id: int, card: str) -> str:
    """Fails: the card is declined."""
    log.warning("order %s: charging card ending %s", order_id, card[-4:])
    raise ValueError(f"card ending {card[-4:]} declined")


@app.task(bind=True, max_retries=3)
def reserve_stock(self, order_id: int, sku: str) -> str:
    """Retries once (the warehouse is busy), then succeeds."""
    if self.request.retries == 0:
        log.warning("order %s: warehouse busy, retrying %s", order_id, sku)
        raise self.retry(countdown=RETRY_DELAY_S)
    time.sleep(0.02)
    log.info("order %s: %s reserved after %d retry", order_id, sku, self.request.retries)
    return sku
