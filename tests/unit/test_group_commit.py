"""Group commit: concurrent writes share a transaction, each caller gets its own result (or the
commit's failure), and each order's event carries the request id of the request that made it."""

import threading
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from order_service.repository import (
    CONTRACT_COLUMNS,
    GroupCommittedOrders,
    event_tables,
    orders,
)
from service_kit import request_id
from service_kit.storage.db import create_engine_for
from service_kit.storage.group_commit import SPACED_BATCH, GroupCommit
from tests.helpers import parse_event


def test_concurrent_submissions_are_committed_together():
    batches: list[int] = []
    release = threading.Event()

    def commit(items):
        release.wait(5)  # hold the first batch so that the others queue up behind it
        batches.append(len(items))
        return [item * 10 for item in items]

    group = GroupCommit(commit)
    results: dict[int, int] = {}

    def submit(n: int) -> None:
        results[n] = group.submit(n)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == {n: n * 10 for n in range(20)}
    assert sum(batches) == 20 and len(batches) < 20  # several requests per transaction


def test_a_lone_write_is_committed_at_once():
    group = GroupCommit(lambda items: items, interval_s=0.2)
    for n in range(4):  # rarer than one per interval: each is committed without waiting
        time.sleep(0.5)
        started = time.perf_counter()
        assert group.submit(n) == n
        assert time.perf_counter() - started < 0.15


def test_writes_more_frequent_than_the_interval_wait_for_company():
    batches: list[list[int]] = []

    def commit(items):
        batches.append(list(items))
        return items

    group = GroupCommit(commit, interval_s=0.3)
    writes = 6 * SPACED_BATCH
    for n in range(writes):  # each waiting for its commit: twice SPACED_BATCH per interval
        threading.Thread(target=group.submit, args=(n,)).start()
        time.sleep(0.3 / (2 * SPACED_BATCH))
    time.sleep(0.6)
    assert sorted(sum(batches, [])) == list(range(writes))
    assert max(len(batch) for batch in batches) >= SPACED_BATCH


def test_writes_that_come_during_a_commit_make_the_next_batch_without_waiting():
    batches: list[list[int]] = []
    first_in = threading.Event()
    release = threading.Event()

    def commit(items):
        batches.append(list(items))
        if items == [0]:
            first_in.set()
            release.wait(5)  # 1 and 2 arrive while 0 is being committed
        return items

    group = GroupCommit(commit, interval_s=0.2)
    waiters = [threading.Thread(target=group.submit, args=(0,))]
    waiters[0].start()
    assert first_in.wait(5)
    waiters += [threading.Thread(target=group.submit, args=(n,)) for n in (1, 2)]
    for waiter in waiters[1:]:
        waiter.start()
    time.sleep(0.1)
    release.set()
    for waiter in waiters:
        waiter.join(5)
    # About one write per 0.1 s, fewer than SPACED_BATCH per interval: the next is not held
    # back to the interval either.
    time.sleep(0.1)
    started = time.perf_counter()
    assert group.submit(3) == 3
    assert time.perf_counter() - started < 0.1
    assert batches == [[0], [1, 2], [3]]


def test_a_failed_commit_reaches_every_waiter():
    def commit(items):
        raise RuntimeError("disk full")

    group = GroupCommit(commit)
    with pytest.raises(RuntimeError, match="disk full"):
        group.submit(1)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_committer_that_ended_is_replaced():
    calls = []
    committers: list[threading.Thread] = []

    def end_the_committer(results):
        calls.append(results)
        committers.append(threading.current_thread())
        if len(calls) == 1:
            raise SystemExit  # not an Exception: it ends the committer's thread

    group = GroupCommit(lambda items: items, after_commit=end_the_committer)
    assert group.submit(1) == 1
    committers[0].join(5)  # ended, and its exception reported, within this test
    assert not committers[0].is_alive() and group._committer_pid is None
    assert group.submit(2) == 2  # a new committer took it
    assert calls == [[1], [2]] and committers[1] is not committers[0]


class InvalidatedLists:
    def __init__(self) -> None:
        self.product_ids: list[int] = []

    def invalidate(self, product_ids) -> None:  # noqa: ANN001
        self.product_ids.extend(product_ids)


UNUSED_PRODUCT = 900_001


def test_orders_and_their_events_are_stored_together(database_urls):
    # On SQLite (a row at a time) and MariaDB (one multi-row INSERT per table and batch), whose
    # database other tests of the run share: only this test's rows are looked at, and its
    # products are ids no other test's product gets (another test counts its product's orders).
    engine = create_engine_for(database_urls["order"])
    lists = InvalidatedLists()
    new_orders = GroupCommittedOrders(engine, lists)
    made: dict[str, dict] = {}
    run = uuid.uuid4().hex[:8]

    def place(n: int) -> None:
        request_id.bind(f"{run}-{n}")
        made[f"{run}-{n}"] = new_orders.add(
            {
                "productId": UNUSED_PRODUCT + n % 3,
                "qty": 1,
                "totalPrice": Decimal(n) / 4,
                "status": "PENDING",
            }
        )

    threads = [threading.Thread(target=place, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(made) == 30
    ids = [order["id"] for order in made.values()]
    with engine.connect() as connection:
        rows = connection.execute(select(*CONTRACT_COLUMNS).where(orders.c.id.in_(ids)))
        stored = {row.id: row._asdict() for row in rows}
        outbox = event_tables.outbox
        rows = connection.execute(select(outbox.c.body, outbox.c.type)).all()
    events = [parse_event(row.body.encode(), row.type) for row in rows]
    events = [event for event in events if event.request_id in made]
    # What each request was answered is what is stored (values bound by the columns' types).
    assert stored == {order["id"]: order for order in made.values()}
    assert {e.request_id: e.data["id"] for e in events} == {r: o["id"] for r, o in made.items()}
    assert sorted(set(lists.product_ids)) == [UNUSED_PRODUCT + n for n in range(3)]
    engine.dispose()
