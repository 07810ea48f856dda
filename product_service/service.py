"""product-service use cases: no Flask, no SQL; storage and order-service behind small ports."""

import decimal
from typing import Any, Protocol

from service_kit.errors import DependencyUnavailable, NotFound

Product = dict[str, Any]
Order = dict[str, Any]


class ProductRepository(Protocol):
    def add(self, fields: dict[str, Any]) -> Product: ...
    def get(self, product_id: int) -> Product | None: ...
    def page_after(self, after: int, limit: int) -> list[Product]: ...
    def replace(self, product_id: int, fields: dict[str, Any]) -> Product | None: ...
    def remove(self, product_id: int) -> bool: ...


class OrdersSource(Protocol):
    def newest_of(self, product_id: int, limit: int) -> list[Order]:
        """The product's newest orders; raises DependencyUnavailable when it cannot tell."""
        ...


class ProductService:
    def __init__(self, repository: ProductRepository, orders: OrdersSource) -> None:
        self._repository = repository
        self._orders = orders

    def create(self, *, name: str, price: decimal.Decimal | int, qty: int) -> Product:
        return self._repository.add({"name": name, "price": _cents(price), "qty": qty})

    def get(self, product_id: int) -> Product:
        product = self._repository.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        return product

    def list_page(self, *, after: int, limit: int) -> dict[str, Any]:
        items = self._repository.page_after(after, limit)
        next_after = items[-1]["id"] if len(items) == limit else None
        return {"items": items, "nextAfter": next_after}

    def update(
        self, product_id: int, *, name: str, price: decimal.Decimal | int, qty: int
    ) -> Product:
        fields = {"name": name, "price": _cents(price), "qty": qty}
        product = self._repository.replace(product_id, fields)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        return product

    def delete(self, product_id: int) -> None:
        if not self._repository.remove(product_id):
            raise NotFound(f"product {product_id} does not exist")

    def with_orders(self, product_id: int, *, limit: int) -> dict[str, Any]:
        """The BFF view: the product always, its orders when order-service answers."""
        product = self.get(product_id)
        try:
            orders = {"available": True, "items": self._orders.newest_of(product_id, limit)}
        except DependencyUnavailable as exc:
            orders = {"available": False, "items": [], "detail": str(exc)}
        return {"product": product, "orders": orders}


def _cents(amount: decimal.Decimal | int) -> decimal.Decimal:
    # The contract allows at most two fractional digits (multipleOf 0.01), so this is exact.
    return decimal.Decimal(amount).quantize(decimal.Decimal("0.01"))
