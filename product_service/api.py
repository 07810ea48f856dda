"""HTTP handlers of openapi/product.yaml, one method per operationId: HTTP in and out only."""

from typing import Any

from product_service.service import ProductService
from service_kit.errors import PreconditionRequired
from service_kit.http import health as health_checks
from service_kit.http.answers import Answer, created, no_content
from service_kit.http.caller import Caller
from service_kit.http.conditional import etag, versions_in
from service_kit.idempotency import IdempotencyKey

# Served by the fast path too (service_kit/http/fast_path.py).
FAST_OPERATIONS = ("get_product",)


class ProductApi:
    def __init__(
        self,
        products: ProductService,
        readiness: health_checks.Readiness,
        *,
        metrics_on_api_port: bool = True,
    ) -> None:
        self._metrics_on_api_port = metrics_on_api_port  # False: <S>_METRICS_PORT serves them
        self._products = products
        self._readiness = readiness

    def create_product(
        self, body: dict[str, Any], caller: Caller, idempotency_key: str | None = None
    ) -> Answer:
        key = IdempotencyKey.of(caller.subject, idempotency_key, body, operation="create_product")
        product = self._products.create(**body, idempotency=key)
        body, status, headers = created(product, f"/products/{product['id']}")
        return body, status, {**headers, "ETag": etag(product["version"])}

    def list_products(self, limit: int, after: int) -> Answer:
        return self._products.list_page(after=after, limit=limit)

    def get_product(self, id: int) -> Answer:  # noqa: A002 - the contract names the parameter
        return _tagged(self._products.get(id))

    def update_product(
        self,
        id: int,  # noqa: A002
        body: dict[str, Any],
        if_match: str | None = None,
    ) -> Answer:
        # Without If-Match a stock written back would erase the reservations made since it
        # was read: the contract requires it here (adjust_stock changes stock relatively).
        if if_match is None:
            raise PreconditionRequired(
                "send If-Match with the product's ETag (from GET /products/{id})"
            )
        return _tagged(self._products.update(id, **body, versions=versions_in(if_match)))

    def delete_product(self, id: int, if_match: str | None = None) -> Answer:  # noqa: A002
        versions = None if if_match is None else versions_in(if_match)
        self._products.delete(id, versions=versions)
        return no_content()

    def adjust_stock(
        self,
        id: int,  # noqa: A002
        body: dict[str, Any],
        caller: Caller,
        idempotency_key: str | None = None,
    ) -> Answer:
        key = IdempotencyKey.of(
            caller.subject, idempotency_key, body, operation="adjust_stock", path={"id": id}
        )
        return _tagged(
            self._products.adjust_stock(
                id, delta=body["delta"], reason=body["reason"], idempotency=key
            )
        )

    def get_product_with_orders(self, id: int, limit: int) -> Answer:  # noqa: A002
        return self._products.with_orders(id, limit=limit)

    def health(self) -> Answer:
        return health_checks.alive()

    def ready(self) -> Answer:
        return self._readiness.answer()

    def metrics(self) -> Answer:
        return health_checks.metrics(on_api_port=self._metrics_on_api_port)


def _tagged(product: dict[str, Any]) -> Answer:
    return product, 200, {"ETag": etag(product["version"])}
