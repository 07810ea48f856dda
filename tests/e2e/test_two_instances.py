"""Two complete instances of the system, as two hosts of a multi-host deployment would run them:
each web service and each worker twice, on other ports, sharing this machine's MariaDB, Redis
and RabbitMQ. Load is spread over both; no stock is oversold, every accepted order settles once,
and with two order workers each order.created is published once (a tap queue counts them)."""

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pika
import pytest
from sqlalchemy import func, select

from devstack import throwaway
from devstack.processes import RunningStack, running_stack
from order_service.repository import orders
from product_service.repository import products
from service_kit.messaging.events import EXCHANGE, read_message
from service_kit.storage.db import create_engine_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_env(mysql_databases, redis_url, rabbitmq_url, tmp_path_factory) -> dict[str, str]:
    env = throwaway.embedded_env(tmp_path_factory.mktemp("shared"), mysql_databases)
    env.update(
        REDIS_URL=redis_url,
        BROKER_URL=rabbitmq_url,
        DEPLOYMENT="multi-host",
        PRODUCT_ACCESS_LOG="0",
        ORDER_ACCESS_LOG="0",
        PRODUCT_WEB_WORKERS="1",
        ORDER_WEB_WORKERS="1",
    )
    return env


@pytest.fixture(scope="module")
def instances(shared_env, tmp_path_factory) -> Iterator[list[RunningStack]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(running_stack(shared_env, tmp_path_factory.mktemp(f"host-{n}")))
            for n in ("a", "b")
        ]


@pytest.fixture
def tap(rabbitmq_url) -> Iterator[tuple[pika.adapters.blocking_connection.BlockingChannel, str]]:
    """A queue of its own bound to every order.created on the exchange, and its channel."""
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    channel = connection.channel()
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    queue = f"test.tap-{uuid.uuid4().hex[:8]}"
    channel.queue_declare(queue, exclusive=True)
    channel.queue_bind(queue, EXCHANGE, routing_key="order.created")
    yield channel, queue
    connection.close()


def published_order_ids(channel, queue: str) -> Counter:  # noqa: ANN001
    """How many times each order's order.created reached the tap (emptied)."""
    seen: Counter = Counter()
    while (message := channel.basic_get(queue, auto_ack=True))[0] is not None:
        events, poison = read_message(message[2], message[0].routing_key)
        assert not poison
        seen.update(event.data["id"] for event in events)
    return seen


def new_product(instance: RunningStack, qty: int) -> int:
    with instance.client("product") as client:
        response = client.post("/products", json={"name": "shared", "price": 2, "qty": qty})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def place_orders(
    instances: list[RunningStack], product_id: int, count: int, *, per_second: float | None
) -> list[dict]:
    """`count` orders of one unit, alternately on each instance's order-service, at once or at
    a steady rate; the 201 answers (other answers fail the test)."""
    clients = [instance.client("order", timeout=30) for instance in instances]
    started = time.monotonic()

    def place(n: int) -> dict:
        if per_second:
            time.sleep(max(started + n / per_second - time.monotonic(), 0))
        client = clients[n % len(clients)]
        response = client.post("/orders", json={"productId": product_id, "qty": 1})
        assert response.status_code == 201, response.text
        return response.json()

    try:
        with ThreadPoolExecutor(32) as pool:
            return list(pool.map(place, range(count)))
    finally:
        for client in clients:
            client.close()


def settled(database_urls: dict[str, str], product_id: int, timeout_s: float = 90) -> Counter:
    """Orders of the product by status, once none is PENDING."""
    engine = create_engine_for(database_urls["order"], pool_size=1)
    query = (
        select(orders.c.status, func.count())
        .where(orders.c.productId == product_id)
        .group_by(orders.c.status)
    )
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            with engine.connect() as connection:
                statuses = Counter(dict(connection.execute(query).all()))
            if not statuses["PENDING"] or time.monotonic() > deadline:
                return statuses
            time.sleep(0.5)
    finally:
        engine.dispose()


def stock_of(database_urls: dict[str, str], product_id: int) -> int:
    engine = create_engine_for(database_urls["product"], pool_size=1)
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(products.c.qty).where(products.c.id == product_id)
            ).scalar_one()
    finally:
        engine.dispose()


def test_two_hundred_orders_over_both_instances_take_a_stock_of_fifty(instances, mysql_databases):
    product_id = new_product(instances[0], 50)
    placed = place_orders(instances, product_id, 200, per_second=None)
    assert len({order["id"] for order in placed}) == 200
    statuses = settled(mysql_databases, product_id)
    assert statuses == Counter(CONFIRMED=50, REJECTED=150)
    assert stock_of(mysql_databases, product_id) == 0


def test_steady_load_publishes_each_order_created_once(instances, mysql_databases, tap):
    """15 s of orders on both instances (longer than the relay's lease, renewed meanwhile), both
    order workers running: each order.created is published once (one relay holds the outbox;
    the other stands by), and every order settles."""
    product_id = new_product(instances[1], 1_000_000)
    placed = place_orders(instances, product_id, 600, per_second=40)
    statuses = settled(mysql_databases, product_id)
    assert statuses == Counter(CONFIRMED=len(placed))
    time.sleep(1)  # the tap gets its copies as the product queue does
    published = published_order_ids(*tap)
    assert set(published) == {order["id"] for order in placed}
    assert set(published.values()) == {1}, "an order.created was published twice"


def test_workers_killed_and_restarted_midway_lose_and_repeat_nothing(instances, mysql_databases):
    """Instance a's workers die without a drain (SIGKILL) during steady load and start again:
    the other instance's relay takes the lease over, and every accepted order settles once."""
    stock = 10_000
    product_id = new_product(instances[0], stock)
    with ThreadPoolExecutor(1) as background:
        load = background.submit(place_orders, instances, product_id, 300, per_second=20)
        time.sleep(5)
        for name in ("order-worker", "product-worker"):
            instances[0].kill_and_restart(name)
        placed = load.result()
    statuses = settled(mysql_databases, product_id)
    assert statuses == Counter(CONFIRMED=len(placed))
    assert stock_of(mysql_databases, product_id) == stock - len(placed)  # each reserved once
    logs = itertools.chain.from_iterable(
        instance.log_of(name).splitlines()
        for instance in instances
        for name in ("order-worker", "product-worker")
    )
    assert not [line for line in logs if "Traceback" in line]
