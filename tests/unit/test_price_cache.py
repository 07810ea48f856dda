"""The stale-while-revalidate product knowledge of the order hot path."""

import decimal
import threading
import time

import pytest

from order_service.price_cache import SwrProductCatalog
from order_service.service import ProductSnapshot
from service_kit.errors import DependencyUnavailable
from service_kit.storage.cache import open_cache


class CountingSource:
    def __init__(self, snapshot: ProductSnapshot | None) -> None:
        self.snapshot = snapshot
        self.calls = 0
        self.fail = False
        self.called = threading.Event()

    def lookup(self, product_id: int) -> ProductSnapshot | None:
        self.calls += 1
        self.called.set()
        if self.fail:
            raise DependencyUnavailable("product-service: ConnectError")
        return self.snapshot


def catalog(tmp_path, source, fresh_s=60.0, stale_s=120.0):
    shared = open_cache(None, namespace="t", file_dir=str(tmp_path / "cache"))
    return SwrProductCatalog(
        source, shared, fresh_s=fresh_s, stale_s=stale_s, shared_ttl_s=60
    ), shared


def test_fresh_knowledge_needs_no_call(tmp_path):
    source = CountingSource(ProductSnapshot(decimal.Decimal(5), 3))
    products, _ = catalog(tmp_path, source)
    assert products.lookup(1) == products.lookup(1) == ProductSnapshot(decimal.Decimal(5), 3)
    assert source.calls == 1


def test_stale_knowledge_is_served_while_one_refresh_runs(tmp_path):
    source = CountingSource(ProductSnapshot(decimal.Decimal(5), 3))
    products, shared = catalog(tmp_path, source, fresh_s=0.05, stale_s=60)
    products.lookup(1)
    shared.delete("product-snapshot:1")  # so the refresh has to ask the source
    source.snapshot = ProductSnapshot(decimal.Decimal(6), 3)
    source.called.clear()
    time.sleep(0.1)
    assert products.lookup(1).price == 5  # stale, answered at once
    assert source.called.wait(5)
    deadline = time.monotonic() + 5
    while products.lookup(1).price != 6 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert products.lookup(1).price == 6
    assert source.calls == 2


def test_failed_refresh_keeps_the_stale_answer(tmp_path):
    source = CountingSource(ProductSnapshot(decimal.Decimal(5), 3))
    products, shared = catalog(tmp_path, source, fresh_s=0.01, stale_s=60)
    products.lookup(1)
    shared.delete("product-snapshot:1")
    source.fail = True
    time.sleep(0.05)
    assert products.lookup(1).price == 5


def test_events_update_what_every_process_knows(tmp_path):
    source = CountingSource(None)
    web, _ = catalog(tmp_path, source, fresh_s=0, stale_s=0)
    worker, _ = catalog(tmp_path, source)  # another process, same shared cache
    worker.remember(9, ProductSnapshot(decimal.Decimal("7.25"), 4))
    assert web.lookup(9) == ProductSnapshot(decimal.Decimal("7.25"), 4)
    assert source.calls == 0
    worker.forget(9)
    assert web.lookup(9) is None and source.calls == 1


def test_an_older_version_of_a_product_changes_nothing(tmp_path):
    """A late or redelivered product event (an older or the same version) is ignored: the
    knowledge of a product never goes back in time."""
    source = CountingSource(None)
    web, _ = catalog(tmp_path, source, fresh_s=0, stale_s=0)
    worker, _ = catalog(tmp_path, source)
    worker.remember(9, ProductSnapshot(decimal.Decimal(7), 4, version=3))
    worker.remember(9, ProductSnapshot(decimal.Decimal(6), 5, version=2))
    worker.remember(9, ProductSnapshot(decimal.Decimal(6), 5, version=3))
    worker.remember(9, ProductSnapshot(decimal.Decimal(6), 5))  # from before versions
    assert web.lookup(9) == ProductSnapshot(decimal.Decimal(7), 4, version=3)
    worker.remember(9, ProductSnapshot(decimal.Decimal(8), 1, version=4))
    assert web.lookup(9) == ProductSnapshot(decimal.Decimal(8), 1, version=4)


def test_unversioned_events_still_apply_in_turn(tmp_path):
    source = CountingSource(None)
    web, _ = catalog(tmp_path, source, fresh_s=0, stale_s=0)
    worker, _ = catalog(tmp_path, source)
    worker.remember(9, ProductSnapshot(decimal.Decimal(7), 4))
    worker.remember(9, ProductSnapshot(decimal.Decimal(8), 3))
    assert web.lookup(9) == ProductSnapshot(decimal.Decimal(8), 3)


def test_unknown_product_and_outage(tmp_path):
    source = CountingSource(None)
    products, _ = catalog(tmp_path, source)
    assert products.lookup(1) is None and products.lookup(1) is None
    assert source.calls == 2  # "no such product" is not remembered
    source.fail = True
    with pytest.raises(DependencyUnavailable):  # nothing known and nobody to ask: a 503
        products.lookup(2)
