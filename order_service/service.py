"""order-service use cases: no Flask, no SQL; storage and product-service behind small ports."""

import decimal
from typing import Any, NamedTuple, Protocol

from service_kit.errors import Conflict, NotFound, Unprocessable

Order = dict[str, Any]
PENDING = "PENDING"


class ProductSnapshot(NamedTuple):
    """What order-service needs to know of a product to accept an order."""

    price: decimal.Decimal
    qty: int


class ProductCatalog(Protocol):
    def lookup(self, product_id: int) -> ProductSnapshot | None:
        """None when the product does not exist; raises DependencyUnavailable when unsure."""
        ...


class OrderRepository(Protocol):
    def add(self, fields: dict[str, Any]) -> Order: ...
    def get(self, order_id: int) -> Order | None: ...
    def newest_of_product(
        self, product_id: int, *, before: int | None, limit: int
    ) -> list[Order]: ...


class OrderService:
    def __init__(self, repository: OrderRepository, catalog: ProductCatalog) -> None:
        self._repository = repository
        self._catalog = catalog

    def place(self, *, product_id: int, qty: int) -> Order:
        product = self._catalog.lookup(product_id)
        if product is None:
            raise Unprocessable(f"product {product_id} does not exist")
        if qty > product.qty:
            raise Conflict(f"product {product_id} has {product.qty} in stock, {qty} were ordered")
        total = (product.price * qty).quantize(decimal.Decimal("0.01"))
        return self._repository.add(
            {"productId": product_id, "qty": qty, "totalPrice": total, "status": PENDING}
        )

    def get(self, order_id: int) -> Order:
        order = self._repository.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        return order

    def of_product(self, product_id: int, *, before: int | None, limit: int) -> dict[str, Any]:
        items = self._repository.newest_of_product(product_id, before=before, limit=limit)
        next_before = items[-1]["id"] if len(items) == limit else None
        return {"items": items, "nextBefore": next_before}
