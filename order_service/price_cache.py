"""Stale-while-revalidate knowledge of products for the order hot path.

Two levels: an in-process map (a price known for less than `fresh_s` is used as is; up to
`stale_s` it is still used while one background refresh per product runs) over the service's
shared cache, which the worker keeps current from product.* events, over product-service's API.
So `POST /orders` normally makes no network call at all."""

import decimal
import logging
import threading
import time
from typing import Any, NamedTuple

from order_service.service import ProductCatalog, ProductSnapshot
from service_kit.telemetry import metrics

_log = logging.getLogger(__name__)
_MAX_ENTRIES = 100_000


# How each request's look-up was answered: known here and fresh, known and stale (refreshed
# meanwhile), from the shared cache, or a miss asked of product-service.
_FRESH, _STALE, _SHARED, _MISS = (
    metrics.cache_lookups.labels("product-knowledge", result)
    for result in ("fresh", "stale", "shared", "miss")
)


class _Entry(NamedTuple):
    snapshot: ProductSnapshot
    known_at: float


def _shared_key(product_id: int) -> str:
    return f"product-snapshot:{product_id}"


def _snapshot_of(cached: Any) -> ProductSnapshot | None:
    """A snapshot from the shared cache's JSON, or None (a miss) for anything else."""
    if not isinstance(cached, dict) or set(cached) != set(ProductSnapshot._fields):
        return None
    price, qty, version = cached["price"], cached["qty"], cached["version"]
    valid_price = isinstance(price, decimal.Decimal | int) and not isinstance(price, bool)
    counts = all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in (qty, version))
    if not (valid_price and counts and price >= 0):
        _log.warning("a cached product snapshot that is not one was ignored")
        return None
    return ProductSnapshot(decimal.Decimal(price), qty, version)


def _older(snapshot: ProductSnapshot, known: ProductSnapshot | None) -> bool:
    """Whether `snapshot` is older than (or the same version as) what is known: a late or
    redelivered event. Version 0 (no version) is older than any other."""
    if known is None:
        return False
    return snapshot.version < known.version or snapshot.version == known.version > 0


class SwrProductCatalog:
    """A ProductCatalog (for the web app) and KnownProducts (for the worker)."""

    def __init__(
        self,
        source: ProductCatalog,
        shared: Any,
        *,
        fresh_s: float,
        stale_s: float,
        shared_ttl_s: int,
    ) -> None:
        self._source = source
        self._shared = shared
        self._fresh_s = fresh_s
        self._stale_s = max(stale_s, fresh_s)
        self._shared_ttl_s = shared_ttl_s
        self._entries: dict[int, _Entry] = {}
        self._refreshing: set[int] = set()
        self._lock = threading.Lock()

    def lookup(self, product_id: int) -> ProductSnapshot | None:
        entry = self._entries.get(product_id)
        if entry is not None:
            age = time.monotonic() - entry.known_at
            if age < self._fresh_s:
                _FRESH.inc()
                return entry.snapshot
            if age < self._stale_s:
                _STALE.inc()
                self._refresh_in_background(product_id)
                return entry.snapshot
        return self._load(product_id, counted=True)

    def remember(self, product_id: int, snapshot: ProductSnapshot) -> None:
        # One worker applies product events at a time (the queue's single active consumer) and
        # web processes only add absent entries, so nothing overwrites between read and write.
        known = _snapshot_of(self._shared.get(_shared_key(product_id)))
        if _older(snapshot, known):
            _log.info(
                "product %s: version %s ignored, %s is known",
                product_id,
                snapshot.version,
                known.version,
            )
            return
        self._shared.set(_shared_key(product_id), snapshot._asdict(), self._shared_ttl_s)
        self._keep(product_id, snapshot)

    def forget(self, product_id: int) -> None:
        self._shared.delete(_shared_key(product_id))
        self._entries.pop(product_id, None)

    def _load(self, product_id: int, *, counted: bool = False) -> ProductSnapshot | None:
        snapshot = _snapshot_of(self._shared.get(_shared_key(product_id)))
        if counted:  # a request's look-up (not a background refresh)
            (_MISS if snapshot is None else _SHARED).inc()
        if snapshot is None:
            snapshot = self._source.lookup(product_id)  # may raise DependencyUnavailable
            if snapshot is not None:
                self._shared.add(_shared_key(product_id), snapshot._asdict(), self._shared_ttl_s)
        if snapshot is None:
            self._entries.pop(product_id, None)  # unknown products are asked about every time
        else:
            self._keep(product_id, snapshot)
        return snapshot

    def _keep(self, product_id: int, snapshot: ProductSnapshot) -> None:
        entry = self._entries.get(product_id)
        if entry is not None and snapshot.version < entry.snapshot.version:
            snapshot = entry.snapshot  # a refresh answered by an older copy: keep the newer
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[product_id] = _Entry(snapshot, time.monotonic())

    def _refresh_in_background(self, product_id: int) -> None:
        with self._lock:
            if product_id in self._refreshing:
                return
            self._refreshing.add(product_id)
        # A greenlet under gunicorn's gevent worker (threading is monkey-patched), else a thread.
        threading.Thread(target=self._refresh, args=(product_id,), daemon=True).start()

    def _refresh(self, product_id: int) -> None:
        try:
            self._load(product_id)
        except Exception as exc:  # the stale entry stays in use until it is too old
            _log.warning("refreshing product %s failed: %s", product_id, exc)
        finally:
            with self._lock:
                self._refreshing.discard(product_id)
