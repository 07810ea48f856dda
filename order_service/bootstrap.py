"""Wiring shared by the web app and the worker: configuration → adapters → use cases."""

from order_service.config import OrderConfig
from order_service.list_cache import OrderListCache
from order_service.price_cache import SwrProductCatalog
from order_service.product_gateway import HttpProductCatalog
from order_service.repository import GroupCommittedOrders, OrderUnitOfWork
from order_service.service import OrderService, ProductCatalog
from service_kit.process.infrastructure import Infrastructure, open_infrastructure


def bootstrap(
    config: OrderConfig, *, product_source: ProductCatalog | None = None
) -> tuple[OrderService, Infrastructure]:
    """`product_source` replaces product-service's HTTP API (tests call it in-process)."""
    infrastructure = open_infrastructure(config, namespace="order")
    catalog = SwrProductCatalog(
        product_source or HttpProductCatalog(config.peer_url, config.peer_timeout_s),
        infrastructure.cache,
        fresh_s=config.price_fresh_s,
        stale_s=config.price_stale_s,
        shared_ttl_s=config.cache_ttl_s,
    )
    lists = OrderListCache(infrastructure.cache, config.cache_ttl_s)
    new_orders = GroupCommittedOrders(
        infrastructure.engine,
        lists,
        interval_s=config.group_commit_interval_s,
        idempotency_ttl_s=config.idempotency_ttl_s,
    )
    service = OrderService(
        lambda: OrderUnitOfWork(infrastructure.engine), new_orders, catalog, catalog, lists
    )
    return service, infrastructure
