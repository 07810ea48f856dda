"""Several relays on one outbox (a worker per host): one holds the lease and publishes, the
others stand by and take over when it stops or lapses; each event reaches the broker once, in
outbox order. On SQLite + the spool and on MariaDB + RabbitMQ."""

import threading
import time

import pytest
from sqlalchemy import delete, func, select, update

from order_service.repository import event_tables
from service_kit.messaging import outbox
from service_kit.messaging.events import read_message
from service_kit.messaging.hold_back import SAMPLE_S, HoldBack
from service_kit.messaging.outbox import OutboxRelay, RelayLease
from service_kit.process.infrastructure import open_broker
from service_kit.storage.db import create_engine_for
from tests.helpers import Machine, order_created

QUEUE = "product-service.order-created"


@pytest.fixture
def engine(database_urls):
    """The order database's engine, its outbox empty and its lease free (MariaDB's databases
    are shared by the session's tests)."""
    engine = create_engine_for(database_urls["order"])
    with engine.begin() as connection:
        connection.execute(delete(event_tables.outbox))
        connection.execute(update(event_tables.relay_lease).values(holder="", expiresAtMs=0))
    yield engine
    engine.dispose()


def lease(engine, length_s: float = 10.0) -> RelayLease:
    return RelayLease(engine, event_tables.relay_lease, length_s=length_s)


def test_one_relay_holds_the_lease_until_it_releases_it(engine) -> None:
    first, second = lease(engine), lease(engine)
    assert first.held()
    assert not second.held()
    assert first.held()  # renewing is taking it again
    first.release()
    assert second.held()
    assert not first.held()
    second.release()


def test_a_lapsed_lease_passes_to_a_stand_by(engine) -> None:
    first, second = lease(engine, length_s=0.3), lease(engine, length_s=0.3)
    assert first.held()
    assert not second.held()
    time.sleep(0.4)  # the first relay stalls past its lease without renewing
    assert second.held()
    assert not first.held()  # it learns it lost the lease and stands by
    second.release()


def test_relays_sharing_an_outbox_publish_each_event_once_in_order(engine, service_env) -> None:
    broker_url = service_env["BROKER_URL"]
    open_broker(broker_url, "product-service").close()  # the queue, before anything is sent
    drain(broker_url)  # what other tests of the session left in it
    stops = [threading.Event() for _ in range(3)]
    threads = [
        threading.Thread(
            target=OutboxRelay(
                engine,
                event_tables.outbox,
                lease(engine, length_s=1.0),
                lambda: open_broker(broker_url),
                batch_size=7,
                idle_wait_s=0.01,
                standby_wait_s=0.05,
            ).run,
            args=(stop,),
        )
        for stop in stops
    ]
    written = 0

    def write(batches: int) -> None:
        nonlocal written
        for _ in range(batches):
            with engine.begin() as connection:
                outbox.append(
                    connection,
                    event_tables.outbox,
                    *(order_created(written + i + 1, 1, 1) for i in range(10)),
                )
            written += 10
            time.sleep(0.02)

    try:
        threads[0].start()
        write(1)
        wait_until_relayed(engine)  # so the first relay holds the lease
        for thread in threads[1:]:
            thread.start()
        write(10)
        stops[0].set()  # the holder stops midway: it hands the lease to a stand-by
        threads[0].join(timeout=30)
        write(10)
        wait_until_relayed(engine)
    finally:
        for stop in stops:
            stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert drain(broker_url) == list(range(1, written + 1))


def test_a_relay_held_back_by_a_busy_machine_publishes_once_the_hold_ends(
    engine, service_env
) -> None:
    """Held longer than its lease lasts, it keeps the lease (a stand-by beside it publishes
    nothing meanwhile) and publishes once the hold ends."""
    broker_url = service_env["BROKER_URL"]
    open_broker(broker_url, "product-service").close()
    drain(broker_url)
    machine = Machine()
    hold = HoldBack(2, read=machine.read)
    time.sleep(SAMPLE_S)
    machine.run(SAMPLE_S, 1.0)  # busy throughout: only the bound releases it
    assert hold.holding()
    stop = threading.Event()
    relay = OutboxRelay(
        engine,
        event_tables.outbox,
        lease(engine, length_s=0.5),
        lambda: open_broker(broker_url),
        idle_wait_s=0.01,
        hold_back=hold,
    )
    with engine.begin() as connection:
        outbox.append(connection, event_tables.outbox, *(order_created(n, 1, 1) for n in (1, 2)))
    stand_by = OutboxRelay(
        engine,
        event_tables.outbox,
        lease(engine, length_s=0.5),
        lambda: open_broker(broker_url),
        idle_wait_s=0.01,
        standby_wait_s=0.05,
    )
    threads = [threading.Thread(target=r.run, args=(stop,)) for r in (relay, stand_by)]
    threads[0].start()
    time.sleep(0.2)  # the held relay takes the lease first
    threads[1].start()
    try:
        time.sleep(1)
        assert outbox_rows(engine) == 2  # held, and the lease still the held relay's
        wait_until_relayed(engine)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert drain(broker_url) == [1, 2]


def wait_until_relayed(engine, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while (left := outbox_rows(engine)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == 0, f"{left} events still in the outbox after {timeout_s}s"


def outbox_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(event_tables.outbox)
        ).scalar_one()


def drain(broker_url: str) -> list[int]:
    """The order ids of every event waiting in the product queue, in delivery order (acked)."""
    broker = open_broker(broker_url)
    ids: list[int] = []
    try:
        while deliveries := broker.receive(QUEUE, 500, 0.5):
            for delivery in deliveries:
                events, poison = read_message(delivery.body, delivery.routing_key)
                assert not poison
                ids += [event.data["id"] for event in events]
            broker.settle(deliveries, [], [])
    finally:
        broker.close()
    return ids
