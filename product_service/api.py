"""HTTP handlers of openapi/product.yaml, one method per operationId: HTTP in and out only."""

from collections.abc import Mapping
from typing import Any

from product_service.service import ProductService
from service_kit.http import health as health_checks
from service_kit.http.answers import Answer, created, no_content
from service_kit.http.caller import Caller
from service_kit.idempotency import IdempotencyKey

# Served by the fast path too (service_kit/http/fast_path.py).
FAST_OPERATIONS = ("get_product",)


class ProductApi:
    def __init__(
        self, products: ProductService, readiness_checks: Mapping[str, health_checks.Check]
    ) -> None:
        self._products = products
        self._readiness_checks = readiness_checks

    def create_product(
        self, body: dict[str, Any], caller: Caller, idempotency_key: str | None = None
    ) -> Answer:
        key = IdempotencyKey.of(caller.subject, idempotency_key, body)
        product = self._products.create(**body, idempotency=key)
        return created(product, f"/products/{product['id']}")

    def list_products(self, limit: int, after: int) -> Answer:
        return self._products.list_page(after=after, limit=limit)

    def get_product(self, id: int) -> Answer:  # noqa: A002 - the contract names the parameter
        return self._products.get(id)

    def update_product(self, id: int, body: dict[str, Any]) -> Answer:  # noqa: A002
        return self._products.update(id, **body)

    def delete_product(self, id: int) -> Answer:  # noqa: A002
        self._products.delete(id)
        return no_content()

    def get_product_with_orders(self, id: int, limit: int) -> Answer:  # noqa: A002
        return self._products.with_orders(id, limit=limit)

    def health(self) -> Answer:
        return health_checks.alive()

    def ready(self) -> Answer:
        return health_checks.readiness(self._readiness_checks)
