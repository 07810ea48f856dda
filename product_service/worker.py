"""`python -m product_service.worker`: publishes product-service's outbox and applies
order.created (stock reservations)."""

from product_service.bootstrap import bootstrap
from product_service.config import load_config
from product_service.repository import event_tables, idempotency_keys
from service_kit.config import exit_on_config_error
from service_kit.messaging.hold_back import HoldBack
from service_kit.process.files import keep_files_private
from service_kit.process.worker import consumer_task, observe, run_tasks

ORDERS_CREATED = "product-service.order-created"


def main() -> None:
    keep_files_private()
    config = exit_on_config_error(load_config)
    service, infrastructure = bootstrap(config)
    observe("product-service", config, infrastructure.outbox_backlog(event_tables.outbox))
    # Stock reservations and what they publish wait while requests keep the machine busy.
    order_flow = HoldBack(config.worker_hold_back_s)

    run_tasks(
        "product-service worker",
        {
            "outbox-relay": infrastructure.relay(event_tables, order_flow).run,
            "inbox-pruner": infrastructure.inbox_pruner(
                event_tables.inbox, config.inbox_retention_s
            ).run,
            "idempotency-key-pruner": infrastructure.key_pruner(
                idempotency_keys, config.idempotency_ttl_s
            ).run,
            "reserve-stock": consumer_task(
                infrastructure.connect_broker, ORDERS_CREATED, service.reserve_stock, order_flow
            ),
        },
        nice=config.worker_nice,
    )


if __name__ == "__main__":
    main()
