"""order-service use cases: no Flask, no SQL; storage, events, caches and product-service behind
small ports."""

import decimal
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, Self

from service_kit.consumer import each
from service_kit.errors import Conflict, NotFound, Unprocessable
from service_kit.events import Event

Order = dict[str, Any]
PENDING, CONFIRMED, REJECTED = "PENDING", "CONFIRMED", "REJECTED"
_log = logging.getLogger(__name__)


class ProductSnapshot(NamedTuple):
    """What order-service knows of a product to accept an order."""

    price: decimal.Decimal
    qty: int


class ProductCatalog(Protocol):
    def lookup(self, product_id: int) -> ProductSnapshot | None:
        """None when the product does not exist; raises DependencyUnavailable when unsure."""
        ...


class KnownProducts(Protocol):
    """Where product.* events keep order-service's knowledge of products fresh."""

    def remember(self, product_id: int, snapshot: ProductSnapshot) -> None: ...
    def forget(self, product_id: int) -> None: ...


class OrderRepository(Protocol):
    def add(self, fields: dict[str, Any]) -> Order: ...
    def get(self, order_id: int) -> Order | None: ...
    def newest_of_product(
        self, product_id: int, *, before: int | None, limit: int
    ) -> list[Order]: ...
    def settle(self, order_id: int, status: str, *, from_status: str) -> bool: ...


class UnitOfWork(Protocol):
    """A transaction: state changes, emitted events and applied-event ids commit together."""

    orders: OrderRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def emit(self, event_type: str, data: dict[str, Any]) -> object: ...
    def first_time(self, event_id: str) -> bool: ...


class Cache(Protocol):
    def get(self, key: str) -> Any: ...
    def add(self, key: str, value: Any, ttl_s: int) -> None: ...
    def set(self, key: str, value: Any, ttl_s: int) -> None: ...


class OrderService:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        catalog: ProductCatalog,
        known_products: KnownProducts,
        cache: Cache,
        cache_ttl_s: int,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._catalog = catalog
        self._known_products = known_products
        self._cache = cache
        self._ttl_s = cache_ttl_s

    def place(self, *, product_id: int, qty: int) -> Order:
        product = self._catalog.lookup(product_id)
        if product is None:
            raise Unprocessable(f"product {product_id} does not exist")
        if qty > product.qty:
            raise Conflict(f"product {product_id} has {product.qty} in stock, {qty} were ordered")
        total = (product.price * qty).quantize(decimal.Decimal("0.01"))
        with self._unit_of_work() as uow:
            order = uow.orders.add(
                {"productId": product_id, "qty": qty, "totalPrice": total, "status": PENDING}
            )
            uow.emit("order.created", order)
        self._invalidate_lists_of(product_id)
        return order

    def get(self, order_id: int) -> Order:
        with self._unit_of_work() as uow:
            order = uow.orders.get(order_id)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        return order

    def of_product(self, product_id: int, *, before: int | None, limit: int) -> dict[str, Any]:
        # Pages are cached under the product's list version; a change gives a new version.
        version = self._cache.get(_list_version_key(product_id))
        page_key = f"orders:{product_id}:{version}:{limit}:{before}"
        if version is not None and (cached := self._cache.get(page_key)) is not None:
            _log.debug("orders of product %s from the cache", product_id)
            return cached
        with self._unit_of_work() as uow:
            items = uow.orders.newest_of_product(product_id, before=before, limit=limit)
        page = {"items": items, "nextBefore": items[-1]["id"] if len(items) == limit else None}
        if version is None:
            self._cache.add(_list_version_key(product_id), secrets.token_hex(8), self._ttl_s)
        else:
            self._cache.add(page_key, page, self._ttl_s)
        return page

    def settle_orders(self, stock_results: Sequence[Event]) -> None:
        """stock.reserved → CONFIRMED, stock.rejected → REJECTED; only from PENDING, once."""
        changed: set[int] = set()
        with self._unit_of_work() as uow:
            for event in each(stock_results):
                if not uow.first_time(event.id):
                    continue
                status = CONFIRMED if event.type == "stock.reserved" else REJECTED
                if uow.orders.settle(event.data["orderId"], status, from_status=PENDING):
                    changed.add(event.data["productId"])
        for product_id in changed:
            self._invalidate_lists_of(product_id)

    def log_orders_created(self, orders_created: Sequence[Event]) -> None:
        """One log line per order, also when the broker delivers an event again."""
        with self._unit_of_work() as uow:
            new = [event for event in orders_created if uow.first_time(event.id)]
        for event in each(new):
            order = event.data
            _log.info(
                "order.created order=%s product=%s qty=%s totalPrice=%s",
                order["id"],
                order["productId"],
                order["qty"],
                order["totalPrice"],
            )

    def note_product_changes(self, product_events: Sequence[Event]) -> None:
        for event in each(product_events):
            product = event.data
            if event.type == "product.deleted":
                self._known_products.forget(product["id"])
            else:
                snapshot = ProductSnapshot(decimal.Decimal(product["price"]), product["qty"])
                self._known_products.remember(product["id"], snapshot)

    def _invalidate_lists_of(self, product_id: int) -> None:
        self._cache.set(_list_version_key(product_id), secrets.token_hex(8), self._ttl_s)


def _list_version_key(product_id: int) -> str:
    return f"orders-version:{product_id}"
