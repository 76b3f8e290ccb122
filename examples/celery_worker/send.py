"""Send one order through the example worker: one task that succeeds, one that fails, one that retries.

    opentelemetry-instrument python -m examples.celery_worker.send

Prints one line per task sent: ``<task name> <task id>``.
"""

from __future__ import annotations

from examples.celery_worker.tasks import charge_card, price_order, reserve_stock


def main() -> None:
    for task, args in ((price_order, (1001, 3, 24.5)),
                       (charge_card, (1001, "4000000000000002")),
                       (reserve_stock, (1001, "kettle-blue"))):
        result = task.apply_async(args=args)
        print(task.name, result.id, flush=True)


if __name__ == "__main__":
    main()
