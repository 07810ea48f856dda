"""Outages of the real broker, cache and database, through a TCP proxy that the test cuts and
restores while the services (both web processes and both workers) keep running."""

import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from devstack.processes import running_stack
from tests.e2e.tcp_proxy import TcpProxy
from tests.e2e.test_services_as_processes import eventually

pytestmark = pytest.mark.parametrize("backend", ["mariadb"], indirect=True)


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def proxies(service_env):
    broker = urlsplit(service_env["BROKER_URL"])
    cache = urlsplit(service_env["REDIS_URL"])
    database = urlsplit(service_env["ORDER_DATABASE_URL"])
    made = {
        "broker": TcpProxy(broker.hostname, broker.port),
        "cache": TcpProxy(cache.hostname, cache.port),
        "order-database": TcpProxy(database.hostname, database.port),
    }
    yield made
    for proxy in made.values():
        proxy.close()


@pytest.fixture
def stack(service_env, proxies, tmp_path):
    env = {
        **service_env,
        "BROKER_URL": through(proxies["broker"], service_env["BROKER_URL"]),
        "REDIS_URL": through(proxies["cache"], service_env["REDIS_URL"]),
        "ORDER_DATABASE_URL": through(proxies["order-database"], service_env["ORDER_DATABASE_URL"]),
    }
    with running_stack(env, tmp_path) as running:
        yield running


def test_orders_survive_a_broker_outage_and_every_event_arrives_once(stack, proxies):
    products = stack.client("product")
    orders = stack.client("order")
    product = products.post("/products", json={"name": "Outage", "price": 2, "qty": 1000}).json()
    placed = []
    for i in range(90):
        if i == 30:
            proxies["broker"].cut()
        if i == 60:
            time.sleep(1.0)  # the workers notice and back off while the broker is gone
            proxies["broker"].restore()
        response = orders.post("/orders", json={"productId": product["id"], "qty": 1})
        assert response.status_code == 201, response.text
        placed.append(response.json()["id"])

    def all_confirmed() -> bool:
        return all(
            orders.get(f"/orders/{order_id}").json()["status"] == "CONFIRMED" for order_id in placed
        )

    settled, took = eventually(all_confirmed, within_s=30)
    assert settled, "some orders never got their stock.reserved"
    stock = products.get(f"/products/{product['id']}").json()["qty"]
    assert stock == 1000 - 90  # each order.created applied exactly once
    logged = stack.log_of("order-worker")
    assert all(logged.count(f"order.created order={order_id} ") == 1 for order_id in placed)
    products.close()
    orders.close()


def test_reads_survive_a_cache_outage(stack, proxies):
    products = stack.client("product")
    product = products.post("/products", json={"name": "Cached", "price": 2, "qty": 5}).json()
    location = f"/products/{product['id']}"
    assert products.get(location).status_code == 200
    proxies["cache"].cut()
    for _ in range(20):
        response = products.get(location)
        assert response.status_code == 200 and response.json() == product
    updated = products.put(
        location, json={"name": "Cached", "price": 3, "qty": 5}, headers={"If-Match": "*"}
    )
    assert updated.status_code == 200  # writes too; the stale entry is not served afterwards
    proxies["cache"].restore()
    fresh, _ = eventually(lambda: products.get(location).json()["price"] == 3, within_s=10)
    assert fresh
    ready, _ = eventually(lambda: products.get("/ready").status_code == 200, within_s=10)
    assert ready
    products.close()


def test_orders_answer_503_while_their_database_is_away_then_recover(stack, proxies):
    products = stack.client("product")
    orders = stack.client("order", timeout=20)
    product = products.post("/products", json={"name": "DbOutage", "price": 2, "qty": 100}).json()
    order = {"productId": product["id"], "qty": 1}
    assert orders.post("/orders", json=order).status_code == 201
    proxies["order-database"].cut()
    for _ in range(5):  # the group committer's connection is gone, and so is every new one
        refused = orders.post("/orders", json=order)
        assert refused.status_code == 503, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert int(refused.headers["retry-after"]) > 0
    proxies["order-database"].restore()
    placed, _ = eventually(
        lambda: (r := orders.post("/orders", json=order)).status_code == 201 and r.json(),
        within_s=15,
    )
    assert placed, "order-service did not recover once its database was back"
    confirmed, _ = eventually(
        lambda: orders.get(f"/orders/{placed['id']}").json()["status"] == "CONFIRMED",
        within_s=15,
    )
    assert confirmed
    products.close()
    orders.close()
