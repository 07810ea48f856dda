"""Both services run as the users infra/ gives them on MySQL, Redis and RabbitMQ (recreated
on this machine from the same files): the seed's flow works with those rights, and a service
cannot write another's events, read its queues, its cache keys or its database."""

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pika
import pika.exceptions
import pymysql
import pytest
import redis
from sqlalchemy.engine import make_url

from devstack import throwaway
from devstack.processes import running_stack
from devstack.service_users import service_users
from service_kit.messaging.events import EXCHANGE, new_event

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, str]]:
    try:
        with service_users() as env:
            yield env
    except throwaway.Unavailable as exc:
        if os.environ.get("REQUIRE_INFRA") == "1":
            pytest.fail(f"{exc} (REQUIRE_INFRA=1)")
        pytest.skip(str(exc))


def test_the_seed_flow_runs_with_each_service_limited_to_its_own(users, tmp_path):
    with (
        running_stack(users, tmp_path) as stack,
        stack.client("product") as products,
        stack.client("order") as orders,
    ):
        product = products.post("/products", json={"name": "Pen", "price": 2.5, "qty": 5}).json()
        assert products.get(f"/products/{product['id']}").status_code == 200  # cached, then read
        order = orders.post("/orders", json={"productId": product["id"], "qty": 2})
        assert order.status_code == 201, order.text
        deadline = time.monotonic() + 30
        while orders.get(f"/orders/{order.json()['id']}").json()["status"] == "PENDING":
            assert time.monotonic() < deadline, "the order was never settled"
            time.sleep(0.2)
        assert orders.get(f"/orders/{order.json()['id']}").json()["status"] == "CONFIRMED"
        assert products.get(f"/products/{product['id']}").json()["qty"] == 3
        listed = orders.get(f"/orders/product/{product['id']}")
        assert [item["id"] for item in listed.json()["items"]] == [order.json()["id"]]
        # A message product-service cannot read (an order.created whose data is no order),
        # published as order-service may: dead-lettered by product-service's own user, to its
        # own dead-letter exchange, with its reason.
        _publish(users["ORDER_BROKER_URL"], "order.created", {"id": "not an order"})
        dead = "product-service.order-created.dead-letter"
        while _queue_messages(users["ORDER_BROKER_URL"], dead) < 1:
            assert time.monotonic() < deadline + 30, "the poison was never dead-lettered"
            time.sleep(0.2)
        for service in ("product", "order"):
            assert "Traceback" not in stack.log_of(f"{service}-worker")
            assert "ACCESS_REFUSED" not in stack.log_of(f"{service}-worker")
            assert "NOPERM" not in stack.log_of(service)


def _queue_messages(url: str, queue: str) -> int:
    """Messages in `queue` of the test's virtual host, as the broker's administrator sees them."""
    vhost = unquote(url.rsplit("/", 1)[1])
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages", "--no-table-headers"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    counts = dict(line.split() for line in listed.splitlines() if line.strip())
    return int(counts.get(queue, 0))


def _channel(url: str) -> pika.adapters.blocking_connection.BlockingChannel:
    channel = pika.BlockingConnection(pika.URLParameters(url)).channel()
    channel.confirm_delivery()
    return channel


def _publish(url: str, routing_key: str, data: dict) -> None:
    channel = _channel(url)
    try:
        body = new_event(routing_key, data).to_json().encode()
        channel.basic_publish(EXCHANGE, routing_key, body)
    finally:
        if channel.connection.is_open:
            channel.connection.close()


STOCK = {"orderId": 1, "productId": 1, "qty": 1, "remaining": 0}
ORDER = {
    "id": 1,
    "productId": 1,
    "qty": 900,
    "totalPrice": 0,
    "status": "PENDING",
    "createdAt": "2026-12-01T00:00:00Z",
}
PRODUCT = {
    "id": 1,
    "name": "x",
    "price": 0,
    "qty": 1,
    "createdAt": "2026-12-01T00:00:00Z",
    "updatedAt": "2026-12-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("service", "routing_key", "data"),
    [
        ("PRODUCT", "order.created", ORDER),
        ("ORDER", "product.updated", PRODUCT),
        ("ORDER", "stock.reserved", STOCK),
    ],
)
def test_a_service_cannot_publish_another_services_events(users, service, routing_key, data):
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        _publish(users[f"{service}_BROKER_URL"], routing_key, data)
    assert refused.value.reply_code == 403


def test_a_service_publishes_its_own_events(users):
    _publish(users["PRODUCT_BROKER_URL"], "product.updated", PRODUCT)  # confirmed: no error
    _publish(users["ORDER_BROKER_URL"], "order.created", ORDER)


def test_a_service_cannot_read_another_services_queue(users):
    channel = _channel(users["PRODUCT_BROKER_URL"])
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.basic_get("order-service.stock-results")
        assert refused.value.reply_code == 403
    finally:
        channel.connection.close()


def _refused(url: str, act: Callable[[pika.adapters.blocking_connection.BlockingChannel], object]):
    channel = _channel(url)
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            act(channel)
        return refused.value
    finally:
        if channel.connection.is_open:
            channel.connection.close()


def test_the_exchanges_are_the_brokers_alone(users):
    """infra/rabbitmq/definitions.json declares the exchanges: no service may declare (with
    its own arguments), nor delete, one, not even its own dead-letter exchange; a passive
    declaration (needing no permission) finds them."""
    for service, own in (("ORDER", "order-service"), ("PRODUCT", "product-service")):
        url = users[f"{service}_BROKER_URL"]
        for exchange, kind in ((EXCHANGE, "topic"), (f"{own}.dead-letter", "direct")):
            declare = _refused(
                url, lambda c, x=exchange, k=kind: c.exchange_declare(x, k, durable=True)
            )
            assert declare.reply_code == 403, (service, exchange)
            delete = _refused(url, lambda c, x=exchange: c.exchange_delete(x))
            assert delete.reply_code == 403, (service, exchange)
            channel = _channel(url)
            try:
                channel.exchange_declare(exchange, passive=True)  # there, and allowed to see it
            finally:
                channel.connection.close()


def test_a_service_consumes_its_own_queue_and_no_dead_letters(users):
    url = users["ORDER_BROKER_URL"]
    channel = _channel(url)
    try:
        channel.basic_get("order-service.stock-results")  # allowed: no error, empty or not
    finally:
        channel.connection.close()
    for queue in (
        "product-service.order-created",  # another's queue
        "product-service.order-created.dead-letter",  # another's dead letters
        "order-service.stock-results.dead-letter",  # its own: the operator's to read
    ):
        assert _refused(url, lambda c, q=queue: c.basic_get(q)).reply_code == 403, queue
    # nor can it route another's dead letters to a queue of its own
    bind = _refused(
        url,
        lambda c: c.queue_bind(
            "order-service.stock-results", "product-service.dead-letter", routing_key="#"
        ),
    )
    assert bind.reply_code == 403
    # nor declare a queue of a name not its own to bind one
    declare = _refused(url, lambda c: c.queue_declare("order-service.spy", durable=True))
    assert declare.reply_code == 403


def test_the_service_code_starts_on_the_brokers_exchanges(users):
    """The code's declarations with the service's user: the refused exchanges checked
    passively, its queues declared and bound, and it consumes."""
    from service_kit.messaging.amqp import AmqpBroker

    broker = AmqpBroker(users["ORDER_BROKER_URL"], "order-service")
    try:
        assert broker.receive("order-service.stock-results", 10, 0.1) is not None
        assert broker.depth("order-service.stock-results.dead-letter") is not None
    finally:
        broker.close()


def test_a_service_cannot_touch_another_services_cache_keys(users):
    product_cache = redis.Redis.from_url(users["PRODUCT_REDIS_URL"])
    key = f"product:test-{uuid.uuid4().hex}"
    product_cache.set(key, b"{}", ex=10)  # its own
    assert product_cache.get(key) == b"{}"
    for command in (
        lambda: product_cache.get("order:1"),
        lambda: product_cache.set("order:1", b"x"),
        lambda: product_cache.scan(0, match="order:*"),  # key names of any service
        lambda: product_cache.keys("*"),
        lambda: product_cache.randomkey(),
    ):
        with pytest.raises(redis.exceptions.NoPermissionError):
            command()
    with pytest.raises(redis.exceptions.NoPermissionError):
        product_cache.flushdb()  # no dangerous command either


def test_a_service_cannot_read_another_services_database(users):
    product_url = make_url(users["PRODUCT_DATABASE_URL"])
    order_database = make_url(users["ORDER_DATABASE_URL"]).database
    connection = pymysql.connect(
        host=product_url.host,
        port=product_url.port,
        user=product_url.username,
        password=product_url.password,
        database=product_url.database,
    )
    try:
        with pytest.raises(pymysql.err.OperationalError) as refused, connection.cursor() as cursor:
            cursor.execute(f"SELECT * FROM `{order_database}`.orders")
        assert refused.value.args[0] == 1142  # SELECT command denied
    finally:
        connection.close()
