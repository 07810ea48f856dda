"""Use cases on the SQLite adapters, with the other service replaced by a stand-in port."""

import decimal

import pytest

from order_service.repository import SqlOrderRepository
from order_service.service import OrderService, ProductSnapshot
from product_service.repository import SqlProductRepository
from product_service.service import ProductService
from service_kit.db import create_engine_for
from service_kit.errors import Conflict, DependencyUnavailable, NotFound, Unprocessable
from service_kit.migrations import upgrade_to_head


@pytest.fixture
def engines(tmp_path):
    urls = {"product": f"sqlite:///{tmp_path}/p.db", "order": f"sqlite:///{tmp_path}/o.db"}
    upgrade_to_head("product_service:migrations", urls["product"])
    upgrade_to_head("order_service:migrations", urls["order"])
    return {name: create_engine_for(url) for name, url in urls.items()}


class StaticCatalog:
    def __init__(self, products: dict[int, ProductSnapshot]) -> None:
        self.products = products

    def lookup(self, product_id: int) -> ProductSnapshot | None:
        return self.products.get(product_id)


class DownCatalog:
    def lookup(self, product_id: int) -> ProductSnapshot | None:
        raise DependencyUnavailable("product-service: ConnectError")


class OrdersFrom:
    def __init__(self, service: OrderService) -> None:
        self.service = service

    def newest_of(self, product_id: int, limit: int) -> list[dict]:
        return self.service.of_product(product_id, before=None, limit=limit)["items"]


class OrdersDown:
    def newest_of(self, product_id: int, limit: int) -> list[dict]:
        raise DependencyUnavailable("order-service: ReadTimeout")


def test_order_total_is_price_times_qty_exactly(engines):
    catalog = StaticCatalog({1: ProductSnapshot(decimal.Decimal("0.10"), 10)})
    orders = OrderService(SqlOrderRepository(engines["order"]), catalog)
    order = orders.place(product_id=1, qty=3)
    assert order["totalPrice"] == decimal.Decimal("0.30")
    assert order["status"] == "PENDING"
    assert orders.get(order["id"])["totalPrice"] == decimal.Decimal("0.30")


def test_order_rules(engines):
    catalog = StaticCatalog({1: ProductSnapshot(decimal.Decimal("5"), 2)})
    orders = OrderService(SqlOrderRepository(engines["order"]), catalog)
    with pytest.raises(Unprocessable):
        orders.place(product_id=2, qty=1)
    with pytest.raises(Conflict):
        orders.place(product_id=1, qty=3)
    with pytest.raises(NotFound):
        orders.get(999)
    with pytest.raises(DependencyUnavailable):
        OrderService(SqlOrderRepository(engines["order"]), DownCatalog()).place(product_id=1, qty=1)
    assert orders.of_product(1, before=None, limit=5) == {"items": [], "nextBefore": None}


def test_product_lifecycle_and_bff(engines):
    orders = OrderService(
        SqlOrderRepository(engines["order"]),
        StaticCatalog({1: ProductSnapshot(decimal.Decimal("1500"), 50)}),
    )
    products = ProductService(SqlProductRepository(engines["product"]), OrdersFrom(orders))
    product = products.create(name="Laptop Demo", price=decimal.Decimal("1500"), qty=50)
    assert product["id"] == 1 and product["price"] == decimal.Decimal("1500.00")
    order = orders.place(product_id=1, qty=2)
    view = products.with_orders(1, limit=10)
    assert view == {"product": product, "orders": {"available": True, "items": [order]}}

    updated = products.update(1, name="Laptop", price=decimal.Decimal("1450.50"), qty=40)
    assert (updated["name"], updated["qty"]) == ("Laptop", 40)
    assert products.list_page(after=0, limit=1) == {"items": [updated], "nextAfter": 1}
    products.delete(1)
    with pytest.raises(NotFound):
        products.get(1)
    with pytest.raises(NotFound):
        products.delete(1)
    with pytest.raises(NotFound):
        products.update(1, name="x", price=1, qty=1)


def test_bff_keeps_the_product_when_orders_are_unavailable(engines):
    products = ProductService(SqlProductRepository(engines["product"]), OrdersDown())
    product = products.create(name="Laptop Demo", price=1500, qty=50)
    view = products.with_orders(product["id"], limit=10)
    assert view["product"] == product
    assert view["orders"] == {
        "available": False,
        "items": [],
        "detail": "order-service: ReadTimeout",
    }
    with pytest.raises(NotFound):
        products.with_orders(product["id"] + 1, limit=10)
