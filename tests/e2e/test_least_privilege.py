"""Both services run as the users infra/ gives them on MySQL, Redis and RabbitMQ (recreated
on this machine from the same files): the seed's flow works with those rights, and a service
cannot write another's events, read its queues, its cache keys or its database."""

import os
import time
import uuid
from collections.abc import Iterator

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
        for service in ("product", "order"):
            assert "Traceback" not in stack.log_of(f"{service}-worker")
            assert "ACCESS_REFUSED" not in stack.log_of(f"{service}-worker")
            assert "NOPERM" not in stack.log_of(service)


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
