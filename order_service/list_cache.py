"""Cached pages of `GET /orders/product/{productId}`.

Pages are stored under the product's current list version; any change to the product's orders
replaces the version (a fresh random token, so concurrent writers never collide), which makes
every older page unreachable at once, in every process. A page is kept per viewer (every order,
or one owner's), so no caller is ever answered with another's list; and only the page everyone
asks for, the first with the contract's default size: a caller choosing `before` and `limit`
cannot fill the cache with pages nobody else reads."""

import datetime
import decimal
import hashlib
import logging
import secrets
from collections.abc import Iterable
from typing import Any

Page = dict[str, Any]
DEFAULT_LIMIT = 20  # order.yaml's default `limit` of GET /orders/product/{productId}
_NOT_CACHED = ""  # the slot of a page that is not kept
_log = logging.getLogger(__name__)


class OrderListCache:
    def __init__(self, cache: Any, ttl_s: int) -> None:
        self._cache = cache
        self._ttl_s = ttl_s

    def lookup(
        self, product_id: int, *, owner: str | None, before: int | None, limit: int
    ) -> tuple[Page | None, str | None]:
        """The cached page of the orders `owner` placed (None: every order), if any, and the
        slot to store it in after reading the database."""
        if before is not None or limit != DEFAULT_LIMIT:
            return None, _NOT_CACHED
        version = self._cache.get(_version_key(product_id))
        if version is None:
            return None, None
        slot = f"orders:{product_id}:{version}:{_viewer_key(owner)}"
        cached = self._cache.get(slot)
        page = _page_from_cache(cached)
        if page is None and cached is not None:
            _log.warning("a cached page of orders that is not one was ignored")
        return page, slot

    def store(self, product_id: int, slot: str | None, page: Page) -> None:
        if slot == _NOT_CACHED:
            return
        if slot is None:  # no version yet: start one; the next read caches its page
            self._cache.add(_version_key(product_id), secrets.token_hex(8), self._ttl_s)
        else:
            # `add`: if a writer replaced the version meanwhile, this slot is unreachable anyway.
            self._cache.add(slot, page, self._ttl_s)

    def invalidate(self, product_ids: Iterable[int]) -> None:
        for product_id in set(product_ids):
            self._cache.set(_version_key(product_id), secrets.token_hex(8), self._ttl_s)


def _version_key(product_id: int) -> str:
    return f"orders-version:{product_id}"


def _viewer_key(owner: str | None) -> str:
    """`*` for every order; else a digest of the owner: a subject of any length or characters
    makes a key of fixed size and alphabet."""
    if owner is None:
        return "*"
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


_ORDER_FIELDS = {"id", "productId", "qty", "totalPrice", "status", "createdAt"}


def _page_from_cache(cached: Any) -> Page | None:
    """A page as the cache holds it (JSON), its orders with their types back; None, a miss, for
    anything else."""
    if not isinstance(cached, dict) or set(cached) != {"items", "nextBefore"}:
        return None
    items = cached["items"]
    if not isinstance(items, list) or not all(
        isinstance(order, dict) and set(order) == _ORDER_FIELDS for order in items
    ):
        return None
    try:
        orders = [
            {
                **order,
                "totalPrice": decimal.Decimal(order["totalPrice"]),
                "createdAt": datetime.datetime.fromisoformat(order["createdAt"]),
            }
            for order in items
        ]
    except (TypeError, ValueError, decimal.InvalidOperation):
        return None
    return {"items": orders, "nextBefore": cached["nextBefore"]}
