"""HTTP handlers of openapi/order.yaml, one per operationId: HTTP in and out only."""

from typing import Any

from order_service.service import OrderService
from service_kit import health as health_checks
from service_kit.web import component, created


def _orders() -> OrderService:
    return component("orders")


def create_order(body: dict[str, Any]) -> Any:
    order = _orders().place(product_id=body["productId"], qty=body["qty"])
    return created(order, f"/orders/{order['id']}")


def get_order(id: int) -> Any:  # noqa: A002 - the contract names the path parameter `id`
    return _orders().get(id)


def list_orders_by_product(productId: int, limit: int, before: int | None = None) -> Any:  # noqa: N803
    return _orders().of_product(productId, before=before, limit=limit)


def health() -> Any:
    return health_checks.alive()


def ready() -> Any:
    return health_checks.readiness(component("readiness_checks"))
