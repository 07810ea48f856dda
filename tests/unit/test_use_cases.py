"""Use cases on the SQLite adapters and the file-system cache, with the other service replaced
by a stand-in port."""

import decimal

import pytest
from sqlalchemy import select

from order_service.list_cache import OrderListCache
from order_service.repository import GroupCommittedOrders, OrderUnitOfWork
from order_service.repository import event_tables as order_events
from order_service.service import OrderService, ProductSnapshot, Viewer
from product_service.repository import ProductUnitOfWork
from product_service.repository import event_tables as product_events
from product_service.service import ProductService, cache_key
from service_kit import exact_json
from service_kit.errors import (
    Conflict,
    DependencyUnavailable,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from service_kit.messaging.events import new_event
from service_kit.storage.cache import open_cache
from service_kit.storage.db import create_engine_for
from service_kit.storage.migrations import upgrade_to_head
from tests.helpers import order_created, parse_event


@pytest.fixture
def engines(tmp_path):
    urls = {"product": f"sqlite:///{tmp_path}/p.db", "order": f"sqlite:///{tmp_path}/o.db"}
    upgrade_to_head("product_service:migrations", urls["product"])
    upgrade_to_head("order_service:migrations", urls["order"])
    return {name: create_engine_for(url) for name, url in urls.items()}


@pytest.fixture
def cache(tmp_path):
    return open_cache(None, namespace="test", file_dir=str(tmp_path / "cache"))


class StaticCatalog:
    def __init__(self, products: dict[int, ProductSnapshot]) -> None:
        self.products = products
        self.remembered: dict[int, ProductSnapshot] = {}

    def lookup(self, product_id: int) -> ProductSnapshot | None:
        return self.products.get(product_id)

    def remember(self, product_id: int, snapshot: ProductSnapshot) -> None:
        self.remembered[product_id] = snapshot

    def forget(self, product_id: int) -> None:
        self.remembered.pop(product_id, None)


class DownCatalog(StaticCatalog):
    def lookup(self, product_id: int) -> ProductSnapshot | None:
        raise DependencyUnavailable("product-service: ConnectError")


class OrdersDown:
    def newest_of(self, product_id: int, limit: int) -> list[dict]:
        raise DependencyUnavailable("order-service: ReadTimeout")


ALICE = Viewer("alice")


def outbox_of(engine, tables):
    """The events waiting in a service's outbox, parsed and checked against their schemas."""
    with engine.connect() as connection:
        rows = connection.execute(select(tables.outbox).order_by(tables.outbox.c.id)).all()
    return [parse_event(row.body.encode(), row.type) for row in rows]


def order_service(engines, cache, catalog):
    lists = OrderListCache(cache, 60)
    new_orders = GroupCommittedOrders(engines["order"], lists)
    return OrderService(
        lambda: OrderUnitOfWork(engines["order"]), new_orders, catalog, catalog, lists
    )


def product_service(engines, cache, orders=None):
    return ProductService(
        lambda: ProductUnitOfWork(engines["product"]), orders or OrdersDown(), cache, 60
    )


def test_order_total_is_exact_and_announced(engines, cache):
    catalog = StaticCatalog({1: ProductSnapshot(decimal.Decimal("0.10"), 10)})
    orders = order_service(engines, cache, catalog)
    order = orders.place(product_id=1, qty=3, owner="alice")
    assert order["totalPrice"] == decimal.Decimal("0.30") and order["status"] == "PENDING"
    assert orders.get(order["id"], ALICE)["totalPrice"] == decimal.Decimal("0.30")
    [event] = outbox_of(engines["order"], order_events)
    assert event.type == "order.created"
    assert event.data["id"] == order["id"] and event.data["totalPrice"] == decimal.Decimal("0.30")


def test_order_rules(engines, cache):
    orders = order_service(
        engines, cache, StaticCatalog({1: ProductSnapshot(decimal.Decimal(5), 2)})
    )
    with pytest.raises(Unprocessable):
        orders.place(product_id=2, qty=1, owner="alice")
    with pytest.raises(Conflict):
        orders.place(product_id=1, qty=3, owner="alice")
    with pytest.raises(NotFound):
        orders.get(999, ALICE)
    with pytest.raises(DependencyUnavailable):
        order_service(engines, cache, DownCatalog({})).place(product_id=1, qty=1, owner="alice")
    assert orders.of_product(1, ALICE, before=None, limit=20) == {"items": [], "nextBefore": None}
    assert outbox_of(engines["order"], order_events) == []  # nothing was accepted


def test_order_lists_are_cached_and_invalidated(engines, cache):
    orders = order_service(
        engines, cache, StaticCatalog({1: ProductSnapshot(decimal.Decimal(5), 9)})
    )
    first = orders.place(product_id=1, qty=1, owner="alice")
    for _ in range(2):  # the first read sets the list version, the second caches the page
        assert [o["id"] for o in orders.of_product(1, ALICE, before=None, limit=20)["items"]] == [
            first["id"]
        ]
    second = orders.place(product_id=1, qty=1, owner="alice")
    page = orders.of_product(1, ALICE, before=None, limit=20)
    assert [o["id"] for o in page["items"]] == [second["id"], first["id"]]


def test_a_caller_sees_its_own_orders_and_the_back_office_every_one(engines, cache):
    orders = order_service(
        engines, cache, StaticCatalog({1: ProductSnapshot(decimal.Decimal(5), 9)})
    )
    alices = orders.place(product_id=1, qty=1, owner="alice")
    bobs = orders.place(product_id=1, qty=1, owner="bob")
    bob, back_office = Viewer("bob"), Viewer("carol", sees_all=True)
    with pytest.raises(NotFound):  # as a missing order: the id tells nothing
        orders.get(alices["id"], bob)
    with pytest.raises(NotFound):  # subjects compare exactly
        orders.get(alices["id"], Viewer("Alice"))
    assert orders.get(alices["id"], ALICE) == orders.get(alices["id"], back_office) == alices
    for _ in range(3):  # the cached pages too: one per viewer
        page = orders.of_product(1, ALICE, before=None, limit=20)
        assert [o["id"] for o in page["items"]] == [alices["id"]]
        page = orders.of_product(1, bob, before=None, limit=20)
        assert [o["id"] for o in page["items"]] == [bobs["id"]]
        page = orders.of_product(1, back_office, before=None, limit=20)
        assert [o["id"] for o in page["items"]] == [bobs["id"], alices["id"]]
    assert "owner" not in alices
    assert all("owner" not in event.data for event in outbox_of(engines["order"], order_events))


def test_only_the_first_page_of_the_default_size_is_cached(engines, cache):
    stored = []

    class Recording:
        def __getattr__(self, name):
            return getattr(cache, name)

        def add(self, key, value, ttl_s):
            stored.append(key)
            return cache.add(key, value, ttl_s)

    lists = OrderListCache(Recording(), 60)
    orders = OrderService(
        lambda: OrderUnitOfWork(engines["order"]),
        GroupCommittedOrders(engines["order"], lists),
        StaticCatalog({1: ProductSnapshot(decimal.Decimal(5), 9)}),
        StaticCatalog({}),
        lists,
    )
    placed = [orders.place(product_id=1, qty=1, owner="alice")["id"] for _ in range(3)]
    for before in range(2, 200):  # pages a caller chose: read, never kept
        orders.of_product(1, ALICE, before=before, limit=1 + before % 100)
    assert stored == []
    for _ in range(3):
        page = orders.of_product(1, ALICE, before=None, limit=20)
        assert [o["id"] for o in page["items"]] == placed[::-1]
    assert len(stored) == 1  # its one page (the orders placed set the list version)


def test_stock_results_settle_orders_once(engines, cache):
    orders = order_service(
        engines, cache, StaticCatalog({1: ProductSnapshot(decimal.Decimal(5), 9)})
    )
    confirmed, rejected = (
        orders.place(product_id=1, qty=1, owner="alice"),
        orders.place(product_id=1, qty=2, owner="alice"),
    )
    reserved = new_event(
        "stock.reserved", {"orderId": confirmed["id"], "productId": 1, "qty": 1, "remaining": 8}
    )
    refused = new_event(
        "stock.rejected",
        {"orderId": rejected["id"], "productId": 1, "qty": 2, "reason": "insufficient-stock"},
    )
    orders.settle_orders([reserved, refused])
    orders.settle_orders([reserved, refused])  # redelivered: no change
    late = new_event(
        "stock.rejected",
        {"orderId": confirmed["id"], "productId": 1, "qty": 1, "reason": "insufficient-stock"},
    )
    orders.settle_orders([late])  # a settled order never moves again
    assert orders.get(confirmed["id"], ALICE)["status"] == "CONFIRMED"
    assert orders.get(rejected["id"], ALICE)["status"] == "REJECTED"
    statuses = [o["status"] for o in orders.of_product(1, ALICE, before=None, limit=20)["items"]]
    assert statuses == ["REJECTED", "CONFIRMED"]


def test_product_events_update_known_products(engines, cache):
    catalog = StaticCatalog({})
    orders = order_service(engines, cache, catalog)
    product = {
        "id": 7,
        "name": "x",
        "price": decimal.Decimal("2.50"),
        "qty": 3,
        "createdAt": "2026-11-21T10:00:00Z",
        "updatedAt": "2026-11-21T10:00:00Z",
    }
    orders.note_product_changes([new_event("product.created", product)])
    assert catalog.remembered[7] == ProductSnapshot(decimal.Decimal("2.50"), 3)
    orders.note_product_changes([new_event("product.deleted", {"id": 7})])
    assert 7 not in catalog.remembered


def as_json(value):  # noqa: ANN001, ANN201
    return exact_json.loads(exact_json.dumps(value))


def test_product_lifecycle_is_announced_and_cached(engines, cache):
    products = product_service(engines, cache)
    product = products.create(name="Laptop Demo", price=decimal.Decimal("1500"), qty=50)
    # The cache holds the product as its JSON; reads give it back with its types.
    assert cache.get(cache_key(product["id"])) == as_json(product)
    with pytest.raises(PreconditionFailed):  # based on a version it is not at
        products.update(product["id"], name="x", price=1, qty=1, versions={2})
    updated = products.update(
        product["id"], name="Laptop", price=decimal.Decimal("1450.50"), qty=40, versions={1}
    )
    assert updated["version"] == 2
    assert cache.get(cache_key(product["id"])) == as_json(updated)
    assert products.get(product["id"]) == updated
    assert products.list_page(after=0, limit=1) == {"items": [updated], "nextAfter": product["id"]}
    with pytest.raises(PreconditionFailed):
        products.delete(product["id"], versions={1})
    products.delete(product["id"], versions={2})
    assert cache.get(cache_key(product["id"])) is None
    with pytest.raises(NotFound):
        products.get(product["id"])
    with pytest.raises(NotFound):
        products.delete(product["id"])
    types = [e.type for e in outbox_of(engines["product"], product_events)]
    assert types == ["product.created", "product.updated", "product.deleted"]


def test_bff_keeps_the_product_when_orders_are_unavailable(engines, cache):
    products = product_service(engines, cache)
    product = products.create(name="Laptop Demo", price=1500, qty=50)
    view = products.with_orders(product["id"], limit=10)
    assert view == {
        "product": product,
        "orders": {"available": False, "items": [], "detail": "order-service: ReadTimeout"},
    }


def test_stock_is_reserved_once_and_never_goes_negative(engines, cache):
    products = product_service(engines, cache)
    product = products.create(name="Laptop Demo", price=10, qty=3)
    products.get(product["id"])  # cached with qty 3
    first, second, third = (order_created(i, product["id"], 2) for i in (1, 2, 3))
    unknown = order_created(4, 999, 1)
    products.reserve_stock([first, second])
    products.reserve_stock([first, third, unknown])  # `first` again: ignored
    assert products.get(product["id"])["qty"] == 1  # 3 - 2, and the cache says so too
    results = [
        e for e in outbox_of(engines["product"], product_events) if e.type.startswith("stock.")
    ]
    assert [(e.type, e.data["orderId"]) for e in results] == [
        ("stock.reserved", 1),
        ("stock.rejected", 2),
        ("stock.rejected", 3),
        ("stock.rejected", 4),
    ]
    assert results[0].data["remaining"] == 1
    assert [e.data["reason"] for e in results[1:]] == ["insufficient-stock"] * 2 + [
        "unknown-product"
    ]
    assert all(e.request_id == first.request_id for e in results[:1])


def test_order_created_is_logged_once_with_its_request_id(engines, cache, caplog):
    orders = order_service(engines, cache, StaticCatalog({}))
    event = order_created(5, 1, 2)
    with caplog.at_level("INFO", logger="order_service.service"):
        orders.log_orders_created([event])
        orders.log_orders_created([event])  # delivered again
    lines = [r for r in caplog.records if "order.created order=5 " in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].getMessage() == "order.created order=5 product=1 qty=2 totalPrice=2"


def test_stock_adjustments_are_relative_and_never_go_below_zero(engines, cache):
    products = product_service(engines, cache)
    product = products.create(name="Pens", price=2, qty=5)
    added = products.adjust_stock(product["id"], delta=10, reason="restock")
    assert (added["qty"], added["version"]) == (15, 2)
    assert products.get(product["id"]) == added  # the cache was refreshed
    with pytest.raises(Conflict):
        products.adjust_stock(product["id"], delta=-16, reason="too many")
    assert products.adjust_stock(product["id"], delta=-15, reason="all")["qty"] == 0
    with pytest.raises(NotFound):
        products.adjust_stock(10**6, delta=1, reason="nothing there")
    types = [e.type for e in outbox_of(engines["product"], product_events)]
    assert types == ["product.created", "product.updated", "product.updated"]
