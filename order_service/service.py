"""order-service use cases: no Flask, no SQL; storage, events, caches and product-service behind
small ports."""

import decimal
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol, Self

from service_kit.errors import Conflict, NotFound, Unprocessable
from service_kit.idempotency import IdempotencyKey
from service_kit.messaging.consumer import each
from service_kit.messaging.events import Event
from service_kit.telemetry import metrics

Order = dict[str, Any]
PENDING, CONFIRMED, REJECTED = "PENDING", "CONFIRMED", "REJECTED"
READ_ALL = "orders:read:all"  # the back-office scope: every order, whoever placed it
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Viewer:
    """Who reads orders: a caller sees the orders it placed, the back office sees every one."""

    subject: str
    sees_all: bool = False

    @classmethod
    def of(cls, subject: str, scopes: Iterable[str]) -> "Viewer":
        return cls(subject, READ_ALL in scopes)

    @property
    def owner(self) -> str | None:
        """The owner whose orders this viewer may see; None: every order."""
        return None if self.sees_all else self.subject


class ProductSnapshot(NamedTuple):
    """What order-service knows of a product to accept an order."""

    price: decimal.Decimal
    qty: int
    version: int = 0  # the product's version; 0 in events from before products had one


class ProductCatalog(Protocol):
    def lookup(self, product_id: int) -> ProductSnapshot | None:
        """None when the product does not exist; raises DependencyUnavailable when unsure."""
        ...


class KnownProducts(Protocol):
    """Where product.* events keep order-service's knowledge of products fresh."""

    def remember(self, product_id: int, snapshot: ProductSnapshot) -> None:
        """Keeps the snapshot unless a newer version of the product is known already."""
        ...

    def forget(self, product_id: int) -> None: ...


class NewOrders(Protocol):
    def add(self, fields: dict[str, Any], idempotency: IdempotencyKey | None = None) -> Order:
        """Store a new order together with its order.created event (and the key, on the order);
        returns once durable. With a key answered before: that order as it was answered,
        stored nothing."""
        ...

    def answered(self, idempotency: IdempotencyKey) -> Order | None:
        """The order a key was answered with, as it was answered, if any; KeyReused if it came
        with another body."""
        ...


class OrderLists(Protocol):
    """Cached pages of a product's orders."""

    def lookup(
        self, product_id: int, *, owner: str | None, before: int | None, limit: int
    ) -> tuple[dict[str, Any] | None, str | None]: ...
    def store(self, product_id: int, slot: str | None, page: dict[str, Any]) -> None: ...
    def invalidate(self, product_ids: Iterable[int]) -> None: ...


class OrderRepository(Protocol):
    def get(self, order_id: int, *, owner: str | None) -> Order | None:
        """The order if it exists and `owner` placed it (None: whoever did)."""
        ...

    def newest_of_product(
        self, product_id: int, *, owner: str | None, before: int | None, limit: int
    ) -> list[Order]: ...
    def settle(self, order_ids: Sequence[int], status: str, *, from_status: str) -> int: ...


class UnitOfWork(Protocol):
    """A transaction: state changes and applied-event ids commit together. (New orders and
    their events are written by `NewOrders`, in group commits.)"""

    orders: OrderRepository

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def first_time(self, events: Sequence[Event]) -> list[Event]: ...


class OrderService:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        new_orders: NewOrders,
        catalog: ProductCatalog,
        known_products: KnownProducts,
        lists: OrderLists,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._new_orders = new_orders
        self._catalog = catalog
        self._known_products = known_products
        self._lists = lists

    def place(
        self, *, product_id: int, qty: int, owner: str, idempotency: IdempotencyKey | None = None
    ) -> Order:
        """A new order of `owner` (the subject placing it), or, for a key answered before, the
        order it was answered with."""
        product = self._catalog.lookup(product_id)
        try:
            if product is None:
                raise Unprocessable(f"product {product_id} does not exist")
            if qty > product.qty:
                raise Conflict(
                    f"product {product_id} has {product.qty} in stock, {qty} were ordered"
                )
        except (Unprocessable, Conflict):
            # A repeat may find the stock its first request took, or the product gone since:
            # what that request was answered still stands.
            if idempotency is not None and (first := self._new_orders.answered(idempotency)):
                return first
            raise
        total = (product.price * qty).quantize(decimal.Decimal("0.01"))
        # Stored with its order.created event; the product's cached lists are invalidated
        # before this returns.
        return self._new_orders.add(
            {
                "productId": product_id,
                "qty": qty,
                "totalPrice": total,
                "status": PENDING,
                "owner": owner,
            },
            idempotency,
        )

    def get(self, order_id: int, viewer: Viewer) -> Order:
        """The order; another caller's is NotFound, as a missing one (an id reveals nothing)."""
        with self._unit_of_work() as uow:
            order = uow.orders.get(order_id, owner=viewer.owner)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        return order

    def of_product(
        self, product_id: int, viewer: Viewer, *, before: int | None, limit: int
    ) -> dict[str, Any]:
        """A page of the product's orders that the viewer may see, newest first."""
        owner = viewer.owner
        cached, slot = self._lists.lookup(product_id, owner=owner, before=before, limit=limit)
        metrics.cache_lookups.labels("order-lists", "miss" if cached is None else "hit").inc()
        if cached is not None:
            _log.debug("orders of product %s from the cache", product_id)
            return cached
        with self._unit_of_work() as uow:
            items = uow.orders.newest_of_product(
                product_id, owner=owner, before=before, limit=limit
            )
        page = {"items": items, "nextBefore": items[-1]["id"] if len(items) == limit else None}
        self._lists.store(product_id, slot, page)
        return page

    def settle_orders(self, stock_results: Sequence[Event]) -> None:
        """stock.reserved → CONFIRMED, stock.rejected → REJECTED; only from PENDING, so once.
        That condition makes a redelivered result change nothing: no inbox row is needed (it
        cost a SELECT and a row per event)."""
        moved = {}
        with self._unit_of_work() as uow:
            for status, kind in ((CONFIRMED, "stock.reserved"), (REJECTED, "stock.rejected")):
                order_ids = [event.data["orderId"] for event in stock_results if event.type == kind]
                if order_ids:
                    moved[status] = uow.orders.settle(order_ids, status, from_status=PENDING)
        for status, count in moved.items():  # committed
            metrics.orders_settled.labels(status).inc(count)
        self._lists.invalidate(event.data["productId"] for event in stock_results)

    def log_orders_created(self, orders_created: Sequence[Event]) -> None:
        """One log line per order, also when the broker delivers an event again."""
        with self._unit_of_work() as uow:
            new = uow.first_time(orders_created)
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
                snapshot = ProductSnapshot(
                    decimal.Decimal(product["price"]), product["qty"], product.get("version", 0)
                )
                self._known_products.remember(product["id"], snapshot)
