"""product-service use cases: no Flask, no SQL; storage, events, cache and order-service behind
small ports."""

import datetime
import decimal
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, NoReturn, Protocol, Self

from service_kit import exact_json
from service_kit.errors import Conflict, DependencyUnavailable, NotFound, PreconditionFailed
from service_kit.idempotency import AnsweredMeanwhile, IdempotencyKey
from service_kit.messaging.consumer import each
from service_kit.messaging.events import Event
from service_kit.telemetry import metrics

Product = dict[str, Any]
Order = dict[str, Any]
_log = logging.getLogger(__name__)


class ProductRepository(Protocol):
    def add(self, fields: dict[str, Any]) -> Product: ...
    def get(self, product_id: int) -> Product | None: ...
    def page_after(self, after: int, limit: int) -> list[Product]: ...
    def replace(
        self, product_id: int, fields: dict[str, Any], versions: Collection[int] | None
    ) -> Product | None: ...
    def remove(self, product_id: int, versions: Collection[int] | None) -> bool: ...
    def adjust_stock(self, product_id: int, delta: int) -> Product | None: ...
    def lock_stock(self, product_ids: Iterable[int]) -> dict[int, int]: ...
    def locked(self, product_ids: Iterable[int]) -> list[Product]: ...
    def set_stock(self, changes: Mapping[int, tuple[int, int]]) -> None: ...


class KeyAnswers(Protocol):
    """Each Idempotency-Key's first answer, stored with the change it answers."""

    def earlier_answer(self, key: IdempotencyKey) -> str | None:
        """The JSON first answered to the key; KeyReused if it came with another body."""
        ...

    def record(self, key: IdempotencyKey, status: int, body: str, location: str | None) -> None:
        """AnsweredMeanwhile if a concurrent request with the key committed first."""
        ...


class UnitOfWork(Protocol):
    """A transaction: state changes, emitted events, applied-event ids and answered keys commit
    together."""

    products: ProductRepository
    answers: KeyAnswers

    def __enter__(self) -> Self: ...
    def __exit__(self, *exc_info: object) -> None: ...
    def emit(self, event_type: str, data: dict[str, Any]) -> object: ...
    def first_time(self, events: Sequence[Event]) -> list[Event]: ...


class Cache(Protocol):
    def get(self, key: str) -> Any: ...
    def add(self, key: str, value: Any, ttl_s: int) -> None: ...
    def set(self, key: str, value: Any, ttl_s: int) -> None: ...
    def delete(self, *keys: str) -> None: ...


class OrdersSource(Protocol):
    def newest_of(self, product_id: int, limit: int) -> list[Order]:
        """The product's newest orders; raises DependencyUnavailable when it cannot tell."""
        ...


def cache_key(product_id: int) -> str:
    return f"product:{product_id}"


class ProductService:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        orders: OrdersSource,
        cache: Cache,
        cache_ttl_s: int,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._orders = orders
        self._cache = cache
        self._ttl_s = cache_ttl_s

    def create(
        self,
        *,
        name: str,
        price: decimal.Decimal | int,
        qty: int,
        idempotency: IdempotencyKey | None = None,
    ) -> Product:
        """A new product, or, for a key answered before, the product it was answered with."""
        fields = {"name": name, "price": _cents(price), "qty": qty}

        def add(uow: UnitOfWork) -> Product:
            product = uow.products.add(fields)
            uow.emit("product.created", product)
            return product

        product, made = self._once(idempotency, 201, add, located=True)
        if made:
            self._cache.set(cache_key(product["id"]), product, self._ttl_s)
        return product

    def get(self, product_id: int) -> Product:
        cached = _product_from_cache(self._cache.get(cache_key(product_id)))
        if cached is not None:
            _CACHE_HIT.inc()
            _log.debug("product %s from the cache", product_id)
            return cached
        _CACHE_MISS.inc()
        with self._unit_of_work() as uow:
            product = uow.products.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        # `add`, not `set`: a writer that committed after our read has already put a fresher one.
        self._cache.add(cache_key(product_id), product, self._ttl_s)
        return product

    def list_page(self, *, after: int, limit: int) -> dict[str, Any]:
        with self._unit_of_work() as uow:
            items = uow.products.page_after(after, limit)
        next_after = items[-1]["id"] if len(items) == limit else None
        return {"items": items, "nextAfter": next_after}

    def update(
        self,
        product_id: int,
        *,
        name: str,
        price: decimal.Decimal | int,
        qty: int,
        versions: Collection[int] | None,
    ) -> Product:
        """Replaces the product if it is at one of `versions` (None: whatever its version)."""
        with self._unit_of_work() as uow:
            product = uow.products.replace(
                product_id, {"name": name, "price": _cents(price), "qty": qty}, versions
            )
            if product is None:
                self._missing_or_changed(uow, product_id)
            uow.emit("product.updated", product)
        self._refresh_cache({product_id})
        return product

    def delete(self, product_id: int, *, versions: Collection[int] | None = None) -> None:
        with self._unit_of_work() as uow:
            if not uow.products.remove(product_id, versions):
                self._missing_or_changed(uow, product_id)
            uow.emit("product.deleted", {"id": product_id})
        self._cache.delete(cache_key(product_id))

    def adjust_stock(
        self,
        product_id: int,
        *,
        delta: int,
        reason: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Product:
        """Adds `delta` units to the stock as it is now (the worker's reservations take theirs
        under the same row lock), never below 0; a key answered before gets that answer."""

        def adjust(uow: UnitOfWork) -> Product:
            product = uow.products.adjust_stock(product_id, delta)
            if product is None:
                if uow.products.get(product_id) is None:
                    raise NotFound(f"product {product_id} does not exist")
                raise Conflict(f"taking {-delta} would leave product {product_id} below 0")
            uow.emit("product.updated", product)
            return product

        product, made = self._once(idempotency, 200, adjust, located=False)
        if made:
            _log.info("stock of product %s adjusted by %+d: %s", product_id, delta, reason)
            self._refresh_cache({product_id})
        return product

    def _once(
        self,
        idempotency: IdempotencyKey | None,
        status: int,
        change: Callable[[UnitOfWork], Product],
        *,
        located: bool,
    ) -> tuple[Product, bool]:
        """`change` in a unit of work, its answer stored with the key if there is one; for a
        key answered before, that answer and nothing changed. (The product, whether it is new.)"""
        try:
            with self._unit_of_work() as uow:
                if idempotency and (first := uow.answers.earlier_answer(idempotency)):
                    return exact_json.loads(first), False
                product = change(uow)
                if idempotency:
                    location = f"/products/{product['id']}" if located else None
                    uow.answers.record(idempotency, status, exact_json.dumps(product), location)
        except AnsweredMeanwhile:  # a concurrent request with the key committed first
            with self._unit_of_work() as uow:
                return exact_json.loads(uow.answers.earlier_answer(idempotency)), False
        return product, True

    @staticmethod
    def _missing_or_changed(uow: UnitOfWork, product_id: int) -> NoReturn:
        product = uow.products.get(product_id)
        if product is None:
            raise NotFound(f"product {product_id} does not exist")
        raise PreconditionFailed(
            f'product {product_id} is at version "{product["version"]}", not the one sent'
        )

    def with_orders(self, product_id: int, *, limit: int) -> dict[str, Any]:
        """The BFF view: the product always, its orders when order-service answers."""
        product = self.get(product_id)
        try:
            orders = {"available": True, "items": self._orders.newest_of(product_id, limit)}
        except DependencyUnavailable as exc:
            orders = {"available": False, "items": [], "detail": str(exc)}
        return {"product": product, "orders": orders}

    def reserve_stock(self, orders_created: Sequence[Event]) -> None:
        """For each new order, in order: take its quantity from the stock if enough remains,
        and say so with stock.reserved or stock.rejected. One transaction for the batch (the
        products' rows locked, each written once); an event seen before changes nothing.
        Then the products' cache entries are refreshed."""
        with self._unit_of_work() as uow:
            new = uow.first_time(orders_created)
            read = uow.products.lock_stock(event.data["productId"] for event in new)
            stock = dict(read)
            reserved = 0
            for event in each(new):
                order = event.data
                product_id, qty = order["productId"], order["qty"]
                outcome = {"orderId": order["id"], "productId": product_id, "qty": qty}
                if stock.get(product_id, -1) >= qty:
                    stock[product_id] -= qty
                    uow.emit("stock.reserved", {**outcome, "remaining": stock[product_id]})
                    _log.debug("order %s: %s of product %s reserved", order["id"], qty, product_id)
                    reserved += 1
                else:
                    reason = "insufficient-stock" if product_id in stock else "unknown-product"
                    uow.emit("stock.rejected", {**outcome, "reason": reason})
                    _log.info("order %s rejected: %s", order["id"], reason)
            changed = {pid: (read[pid], qty) for pid, qty in stock.items() if qty != read[pid]}
            uow.products.set_stock(changed)
        metrics.stock_reservations.labels("reserved").inc(reserved)
        metrics.stock_reservations.labels("rejected").inc(len(new) - reserved)
        if changed:
            self._refresh_cache(set(changed))

    def _refresh_cache(self, product_ids: set[int]) -> None:
        """Invalidate, then warm with the committed rows (a GET right after sees the new stock).
        The rows stay locked while they are written to the cache: two writers of one product
        (the worker's reservations, a restock) then warm it in the order they read it, and the
        newest stays."""
        self._cache.delete(*(cache_key(product_id) for product_id in product_ids))
        with self._unit_of_work() as uow:
            for product in uow.products.locked(product_ids):
                self._cache.set(cache_key(product["id"]), product, self._ttl_s)


_PRODUCT_FIELDS = {"id", "name", "price", "qty", "version", "createdAt", "updatedAt"}


_CACHE_HIT = metrics.cache_lookups.labels("product", "hit")
_CACHE_MISS = metrics.cache_lookups.labels("product", "miss")


def _product_from_cache(cached: Any) -> Product | None:
    """A product as the cache holds it (JSON), with its types back; None, a miss, for anything
    else."""
    if not isinstance(cached, dict) or set(cached) != _PRODUCT_FIELDS:
        return None
    try:
        return {
            **cached,
            "price": decimal.Decimal(cached["price"]),
            "createdAt": datetime.datetime.fromisoformat(cached["createdAt"]),
            "updatedAt": datetime.datetime.fromisoformat(cached["updatedAt"]),
        }
    except (TypeError, ValueError, decimal.InvalidOperation):
        _log.warning("a cached product that is not one was ignored")
        return None


def _cents(amount: decimal.Decimal | int) -> decimal.Decimal:
    # The contract allows at most two fractional digits (multipleOf 0.01), so this is exact.
    return decimal.Decimal(amount).quantize(decimal.Decimal("0.01"))
