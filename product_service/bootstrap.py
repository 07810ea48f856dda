"""Wiring shared by the web app and the worker: configuration → adapters → use cases."""

from product_service.order_gateway import HttpOrdersSource
from product_service.repository import ProductUnitOfWork
from product_service.service import OrdersSource, ProductService
from service_kit.config import ServiceConfig
from service_kit.process.infrastructure import Infrastructure, open_infrastructure


def bootstrap(
    config: ServiceConfig, *, orders: OrdersSource | None = None
) -> tuple[ProductService, Infrastructure]:
    infrastructure = open_infrastructure(config, namespace="product")
    service = ProductService(
        lambda: ProductUnitOfWork(infrastructure.engine, config.idempotency_ttl_s),
        orders or HttpOrdersSource(config.peer_url, config.peer_timeout_s),
        infrastructure.cache,
        config.cache_ttl_s,
    )
    return service, infrastructure
