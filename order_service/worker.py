"""`python -m order_service.worker`: publishes order-service's outbox, logs order.created,
settles orders from stock.reserved / stock.rejected, and keeps known products fresh from
product.* events."""

from order_service.bootstrap import bootstrap
from order_service.config import load_config
from order_service.repository import event_tables
from service_kit.config import exit_on_config_error
from service_kit.messaging.hold_back import HoldBack
from service_kit.process.files import keep_files_private
from service_kit.process.worker import Task, consumer_task, observe, run_tasks


def main() -> None:
    keep_files_private()
    config = exit_on_config_error(load_config)
    service, infrastructure = bootstrap(config)
    observe("order-service", config, infrastructure.outbox_backlog(event_tables.outbox))
    connect = infrastructure.connect_broker
    # The order flow waits while requests keep the machine busy; product changes do not (they
    # are few, and keep the prices orders are taken at fresh).
    order_flow = HoldBack(config.worker_hold_back_s)
    tasks: dict[str, Task] = {
        "outbox-relay": infrastructure.relay(event_tables, order_flow).run,
        "inbox-pruner": infrastructure.inbox_pruner(
            event_tables.inbox, config.inbox_retention_s
        ).run,
        "log-orders-created": consumer_task(
            connect, "order-service.order-created-log", service.log_orders_created, order_flow
        ),
        "settle-orders": consumer_task(
            connect, "order-service.stock-results", service.settle_orders, order_flow
        ),
        "product-changes": consumer_task(
            connect, "order-service.product-changes", service.note_product_changes
        ),
    }
    run_tasks("order-service worker", tasks, nice=config.worker_nice)


if __name__ == "__main__":
    main()
