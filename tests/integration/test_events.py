"""Event delivery through the real broker (RabbitMQ in a throw-away vhost, or the local spool):
redelivery changes nothing, poison and always-failing messages end in the dead-letter queue,
and the consumer keeps going."""

import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pika
import pytest

from devstack import throwaway
from product_service.bootstrap import bootstrap
from product_service.config import load_config
from service_kit.messaging import events
from service_kit.messaging.amqp import PACK_SIZE, AmqpBroker
from service_kit.messaging.broker import OutgoingMessage
from service_kit.messaging.consumer import consume
from service_kit.messaging.events import (
    MAX_DELIVERIES,
    Event,
    dead_letter_queue,
    new_event,
    read_message,
)
from service_kit.messaging.spool import SpoolBroker
from service_kit.process.infrastructure import open_broker
from tests.conftest import _absent
from tests.helpers import order_created

QUEUE = "product-service.order-created"
INVALID_EVENT = b'{"id": "x", "type": "order.created"}'


@pytest.fixture
def products(service_env):
    service, infrastructure = bootstrap(load_config(service_env))
    return service, infrastructure


def message(event: Event) -> OutgoingMessage:
    return OutgoingMessage(event.type, event.to_json().encode(), event.id)


@pytest.fixture
def consuming(products) -> Iterator[Callable[[Callable[[Sequence[Event]], None]], None]]:
    """Start a consumer of the product queue with a given handler, stopped after the test."""
    _, infrastructure = products
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(handler: Callable[[Sequence[Event]], None]) -> None:
        thread = threading.Thread(
            target=consume, args=(infrastructure.connect_broker, QUEUE, handler, stop), daemon=True
        )
        thread.start()
        threads.append(thread)

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def wait_for(condition: Callable[[], bool], within_s: float = 10) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def dead_letters(broker_url: str) -> int:
    dead = dead_letter_queue(QUEUE)
    if broker_url.startswith("amqp"):
        connection = pika.BlockingConnection(pika.URLParameters(broker_url))
        try:
            return connection.channel().queue_declare(dead, passive=True).method.message_count
        finally:
            connection.close()
    spool = SpoolBroker(broker_url)
    try:
        return spool._db.execute("SELECT COUNT(*) FROM spool WHERE queue = ?", (dead,)).fetchone()[
            0
        ]
    finally:
        spool.close()


def test_a_redelivered_order_created_changes_stock_once(products, consuming, service_env):
    service, infrastructure = products
    product = service.create(name="Once", price=1, qty=10)
    event = order_created(910_001, product["id"], 3)
    broker = infrastructure.connect_broker()
    broker.publish([message(event)])
    broker.publish([message(event), message(event)])  # redelivered, twice
    # A later order on the same queue: once it is applied, the copies before it were handled.
    broker.publish([message(order_created(910_002, product["id"], 1))])
    broker.close()
    consuming(service.reserve_stock)
    assert wait_for(lambda: service.get(product["id"])["qty"] <= 6)
    assert service.get(product["id"])["qty"] == 6  # 10 - 3 once - 1, not 10 - 3 × 3 - 1


def test_poison_and_failing_messages_are_dead_lettered_and_consuming_goes_on(
    products, consuming, service_env
):
    service, infrastructure = products
    product = service.create(name="Survivor", price=1, qty=10)
    before = dead_letters(service_env["BROKER_URL"])
    always_fails = order_created(920_666, product["id"], 1)
    attempts: list[str] = []

    def handler(events: Sequence[Event]) -> None:
        if any(event.id == always_fails.id for event in events):
            attempts.append(always_fails.id)
            raise RuntimeError("this one never works")
        service.reserve_stock(events)

    broker = infrastructure.connect_broker()
    broker.publish([OutgoingMessage("order.created", b"not json at all", "poison-1")])
    broker.publish([OutgoingMessage("order.created", INVALID_EVENT, "poison-2")])
    # On RabbitMQ these two travel as one pack: it is redelivered whole, and dead-lettered whole
    # in the end; the good order in it is applied once all the same.
    broker.publish([message(always_fails), message(order_created(920_001, product["id"], 2))])
    broker.close()
    consuming(handler)
    assert wait_for(lambda: dead_letters(service_env["BROKER_URL"]) == before + 3, within_s=20)
    assert service.get(product["id"])["qty"] == 8  # the good order was applied, once
    # Bounded retries: tried as part of its batch, then alone until the delivery limit.
    assert MAX_DELIVERIES <= len(attempts) <= 2 * (MAX_DELIVERIES + 1)

    # ... and the consumer is still consuming.
    broker = infrastructure.connect_broker()
    broker.publish([message(order_created(920_002, product["id"], 5))])
    broker.close()
    assert wait_for(lambda: service.get(product["id"])["qty"] == 3)


def test_the_valid_events_of_a_pack_are_applied_and_the_pack_is_dead_lettered(
    products, consuming, service_env
):
    """An event that is not valid inside a pack (RabbitMQ; alone on the spool): the others are
    applied, and the message goes to the dead-letter queue as it came, to be looked at."""
    service, infrastructure = products
    product = service.create(name="Packed", price=1, qty=10)
    before = dead_letters(service_env["BROKER_URL"])
    broker = infrastructure.connect_broker()
    broker.publish(
        [
            message(order_created(930_001, product["id"], 1)),
            OutgoingMessage("order.created", INVALID_EVENT, "invalid"),
            message(order_created(930_002, product["id"], 2)),
        ]
    )
    broker.close()
    consuming(service.reserve_stock)
    assert wait_for(lambda: dead_letters(service_env["BROKER_URL"]) == before + 1)
    assert wait_for(lambda: service.get(product["id"])["qty"] == 7)


def test_open_broker_picks_the_adapter_by_url(tmp_path):
    spool = open_broker(f"sqlite:///{tmp_path}/events.db")
    assert isinstance(spool, SpoolBroker)
    spool.close()


def test_a_batch_reaches_rabbitmq_in_one_write_and_arrives_whole_in_packs(rabbitmq_url):
    """The relay's batch goes to the socket as one buffer (not three writes per message), and
    arrives intact and in order: consecutive events of one type in packs of up to PACK_SIZE,
    an event alone as itself, a message bigger than a frame whole."""
    broker = AmqpBroker(rabbitmq_url)
    probe = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    try:
        channel = probe.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, events.EXCHANGE, routing_key="#")
        created = [order_created(n, 1, 1) for n in range(1, PACK_SIZE + 53)]
        reserved = new_event(
            "stock.reserved", {"orderId": 1, "productId": 1, "qty": 1, "remaining": 0}
        )
        outgoing = [
            *(message(event) for event in created[:-2]),
            message(reserved),
            *(message(event) for event in created[-2:]),
            OutgoingMessage("test.big", b"x" * 300_000, "big"),
        ]
        transport = broker._connection._impl._transport
        writes: list[int] = []
        write = transport.write
        transport.write = lambda data: (writes.append(len(data)), write(data))[-1]
        broker.publish(outgoing)
        assert len(writes) == 3  # tx.select, the batch, tx.commit

        received = [channel.basic_get(queue, auto_ack=True) for _ in range(5)]
        assert channel.basic_get(queue)[0] is None  # nothing more
        keys = [method.routing_key for method, _, _ in received]
        assert keys == [
            "order.created",
            "order.created",
            "stock.reserved",
            "order.created",
            "test.big",
        ]
        counts = [properties.headers["event-count"] for _, properties, _ in received]
        assert counts == [PACK_SIZE, 50, 1, 2, 1]
        assert received[2][1].message_id == reserved.id  # alone: the event's own id
        assert received[2][2] == reserved.to_json().encode()  # alone: the envelope itself
        assert received[4][2] == b"x" * 300_000
        unpacked = [read_message(body, method.routing_key) for method, _, body in received[:4]]
        assert all(not problems for _, problems in unpacked)
        ids = [event.id for events_read, _ in unpacked for event in events_read]
        assert ids == [e.id for e in created[:-2]] + [reserved.id] + [e.id for e in created[-2:]]
    finally:
        probe.close()
        broker.close()


def test_a_backlog_is_consumed_in_full_batches_without_lingering(rabbitmq_url):
    """A batch that is full goes at once: the wait for a fuller batch (here 2 s) applies to a
    quiet queue, not to a backlog. Quiet events still gather into one batch meanwhile."""
    # A virtual host of its own: no other queue there receives these order.created events.
    with throwaway.rabbitmq_vhost() as url:
        _consume_a_backlog(url)


def _consume_a_backlog(rabbitmq_url: str) -> None:
    queue = "test.backlog"
    publisher = AmqpBroker(rabbitmq_url, owner="test")  # declares the exchanges only
    probe = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = probe.channel()
    channel.queue_declare(queue)  # not exclusive: the consumer has a connection of its own
    channel.queue_bind(queue, events.EXCHANGE, routing_key="order.created")
    stop = threading.Event()
    batches: list[int] = []
    consumer = threading.Thread(
        target=consume,
        args=(
            lambda: AmqpBroker(rabbitmq_url, owner="test"),
            queue,
            lambda batch: batches.append(len(batch)),
            stop,
        ),
        kwargs={"batch_size": 500, "linger_s": 2.0},
        daemon=True,
    )
    try:
        backlog = [order_created(n, 1, 1) for n in range(1, 2001)]
        publisher.publish(
            [OutgoingMessage("order.created", e.to_json().encode(), e.id) for e in backlog]
        )
        started = time.monotonic()
        consumer.start()
        assert wait_for(lambda: sum(batches) == 2000, within_s=30)
        # A wait per batch takes 4 × 2 s (the code before took 8.2 s); this leaves room for a
        # slow machine.
        assert time.monotonic() - started < 4.0
        assert batches == [500] * 4

        quiet = [order_created(n, 1, 1) for n in (2001, 2002)]
        for event in quiet:
            publisher.publish(
                [OutgoingMessage("order.created", event.to_json().encode(), event.id)]
            )
            time.sleep(0.3)
        assert wait_for(lambda: sum(batches) == 2002)
        assert batches[4:] == [2]
    finally:
        stop.set()
        if consumer.is_alive():
            consumer.join(timeout=10)
        channel.queue_delete(queue)
        publisher.close()
        probe.close()


def test_an_ordered_queue_delivers_to_one_consumer_at_a_time(rabbitmq_url):
    """order-service's product changes reach one worker while it lives (the others stand by),
    so a product's events apply in order; the next worker takes over when it goes."""
    queue = "order-service.product-changes"
    assert queue in events.ordered_queues()
    active, standby = (AmqpBroker(rabbitmq_url, "order-service") for _ in range(2))
    assert active.receive(queue, 100, 0.2) == [] and standby.receive(queue, 100, 0.2) == []
    changes = [new_event("product.updated", product(version)) for version in range(1, 6)]
    publisher = AmqpBroker(rabbitmq_url)
    for event in changes[:3]:  # a message each: competing consumers would share them
        publisher.publish([message(event)])
    received = active.receive(queue, 100, 5)
    assert standby.receive(queue, 100, 1) == []
    active.settle(received, [], [])
    active.close()  # the active worker stops: the stand-by receives what comes next
    for event in changes[3:]:
        publisher.publish([message(event)])
    taken_over = standby.receive(queue, 100, 5)
    publisher.close()
    carried = [e for d in received + taken_over for e in read_message(d.body, d.routing_key)[0]]
    assert [e.data["version"] for e in carried] == [1, 2, 3, 4, 5]
    standby.settle(taken_over, [], [])
    standby.close()


def product(version: int) -> dict:
    return {
        "id": 1,
        "name": "x",
        "price": 1,
        "qty": 1,
        "version": version,
        "createdAt": "2026-11-21T10:00:00Z",
        "updatedAt": "2026-11-21T10:00:00Z",
    }


@pytest.mark.integration
def test_a_queue_declared_by_an_earlier_release_keeps_working(caplog):
    """Before each service had a dead-letter exchange of its own, every queue dead-lettered
    through the shared `events.dead-letter`; a queue's arguments cannot change, so the code
    keeps such a queue as it is (a warning) and starts, and its poison still reaches its
    dead-letter queue, now through the service's own exchange (docs/architecture.md)."""
    try:
        vhost = throwaway.rabbitmq_vhost()
        url = vhost.__enter__()  # a vhost of its own: the session's has the current queues
    except throwaway.Unavailable as exc:
        _absent(str(exc))
    try:
        connection = pika.BlockingConnection(pika.URLParameters(url))
        channel = connection.channel()
        channel.exchange_declare("events.dead-letter", "direct", durable=True)
        old = {**events.queue_arguments(QUEUE), "x-dead-letter-exchange": "events.dead-letter"}
        channel.queue_declare(QUEUE, durable=True, arguments=old)
        broker = AmqpBroker(url, "product-service")
        try:
            assert "kept as it is" in caplog.text
            broker.publish([OutgoingMessage("order.created", INVALID_EVENT, "poison-1")])
            (delivery,) = broker.receive(QUEUE, 10, 5)
            delivery.poison_reason = "not an event"
            broker.settle([], [], [delivery])
        finally:
            broker.close()
        assert wait_for(lambda: dead_letters(url) == 1)
        kept = channel.queue_declare(QUEUE, durable=True, arguments=old)  # its old arguments
        assert kept.method.queue == QUEUE
        connection.close()
    finally:
        vhost.__exit__(None, None, None)
