"""HTTP handlers of openapi/order.yaml, one method per operationId: HTTP in and out only."""

from typing import Any

from order_service.service import OrderService, Viewer
from service_kit.http import health as health_checks
from service_kit.http.answers import Answer, created
from service_kit.http.caller import Caller
from service_kit.idempotency import IdempotencyKey

# Served by the fast path too (service_kit/http/fast_path.py).
FAST_OPERATIONS = ("create_order", "get_order")


class OrderApi:
    def __init__(
        self,
        orders: OrderService,
        readiness: health_checks.Readiness,
        *,
        metrics_on_api_port: bool = True,
    ) -> None:
        self._metrics_on_api_port = metrics_on_api_port  # False: <S>_METRICS_PORT serves them
        self._orders = orders
        self._readiness = readiness

    def create_order(
        self, body: dict[str, Any], caller: Caller, idempotency_key: str | None = None
    ) -> Answer:
        order = self._orders.place(
            product_id=body["productId"],
            qty=body["qty"],
            owner=caller.subject,
            idempotency=IdempotencyKey.of(
                caller.subject, idempotency_key, body, operation="create_order"
            ),
        )
        return created(order, f"/orders/{order['id']}")

    def get_order(self, id: int, caller: Caller) -> Answer:  # noqa: A002 - the contract's name
        return self._orders.get(id, Viewer.of(caller.subject, caller.scopes))

    def list_orders_by_product(
        self,
        productId: int,  # noqa: N803 - the contract's name
        limit: int,
        caller: Caller,
        before: int | None = None,
    ) -> Answer:
        viewer = Viewer.of(caller.subject, caller.scopes)
        return self._orders.of_product(productId, viewer, before=before, limit=limit)

    def health(self) -> Answer:
        return health_checks.alive()

    def ready(self) -> Answer:
        return self._readiness.answer()

    def metrics(self) -> Answer:
        return health_checks.metrics(on_api_port=self._metrics_on_api_port)
