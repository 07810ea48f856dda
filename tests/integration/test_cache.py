"""The shared cache: on the real Redis, many requests at once wait for a pooled connection
instead of finding the cache "failed" (which sent reads to the database); in both backends,
values are JSON, and a pickled entry someone else wrote is a miss that never runs."""

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import redis
from flask_caching.backends import FileSystemCache, RedisCache

from order_service.config import load_config as load_order_config
from product_service.config import load_config as load_product_config
from service_kit.storage.cache import open_cache
from tests.integration.stack import build_stack, new_product


def test_more_concurrent_readers_than_pooled_connections(redis_url, tmp_path, caplog):
    cache = open_cache(redis_url, namespace="concurrency", file_dir=str(tmp_path))
    cache.set("key", {"qty": 1}, 60)
    with ThreadPoolExecutor(max_workers=300) as pool:
        values = list(pool.map(lambda _: cache.get("key"), range(3000)))
    assert values == [{"qty": 1}] * 3000
    assert "failed" not in caplog.text


class RunsCode:
    """What an attacker with write access to the cache stores: unpickling it runs a call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.touch, (self.marker,))


def pickling_product_cache(service_env: dict):  # noqa: ANN201
    """product-service's cache as Flask-Caching writes it by default: pickled values."""
    if "REDIS_URL" in service_env:
        client = redis.Redis.from_url(service_env["REDIS_URL"])
        return RedisCache(host=client, key_prefix="product:")
    return FileSystemCache(load_product_config(service_env).cache_dir)


def test_a_pickled_cache_entry_is_a_miss_and_never_runs(service_env, tmp_path):
    stack = build_stack(service_env)
    products, orders = stack.product.test_client(), stack.order.test_client()
    product = new_product(products, price=1500, qty=50)
    marker = tmp_path / "ran"
    cache = pickling_product_cache(service_env)
    cache.set(f"product:{product['id']}", RunsCode(marker))
    assert pickle.loads(pickle.dumps(RunsCode(tmp_path / "probe"))) is None  # it would run
    assert (tmp_path / "probe").exists()
    for _ in range(2):
        response = products.get(f"/products/{product['id']}")
        assert response.status_code == 200
        assert response.get_json()["qty"] == 50
    order = orders.post("/orders", json={"productId": product["id"], "qty": 1})
    assert order.status_code == 201
    assert not marker.exists()


def test_a_cache_entry_of_the_wrong_shape_is_a_miss(service_env, caplog):
    stack = build_stack(service_env)
    products, orders = stack.product.test_client(), stack.order.test_client()
    product = new_product(products, price=1500, qty=50)
    config = load_product_config(service_env)
    cache = open_cache(config.redis_url, namespace="product", file_dir=config.cache_dir)
    cache.set(f"product:{product['id']}", {"id": product["id"], "price": 0}, 60)
    response = products.get(f"/products/{product['id']}")
    assert response.status_code == 200 and response.get_json() == product
    # order-service's shared product knowledge, with a price nobody published.
    order_config = load_order_config(service_env)
    order_cache = open_cache(
        order_config.redis_url, namespace="order", file_dir=order_config.cache_dir
    )
    order_cache.set(f"product-snapshot:{product['id']}", {"price": -1, "qty": 10**6}, 60)
    order = orders.post("/orders", json={"productId": product["id"], "qty": 2})
    assert order.status_code == 201 and order.get_json()["totalPrice"] == 3000
    # A cached page of orders: read twice (the first read starts a list version, the second
    # caches its page), then replaced by one with an order nobody made.
    listing = f"/orders/product/{product['id']}"
    assert orders.get(listing).status_code == orders.get(listing).status_code == 200
    version = order_cache.get(f"orders-version:{product['id']}")
    slot = f"orders:{product['id']}:{version}:*"  # the back office's page (every order)
    assert order_cache.get(slot) is not None  # the slot the service reads
    forged = {"items": [{"id": 999, "totalPrice": "0"}], "nextBefore": None}
    order_cache.set(slot, forged, 60)
    listed = orders.get(listing).get_json()["items"]
    assert [item["id"] for item in listed] == [order.get_json()["id"]]
    assert "a cached page of orders that is not one was ignored" in caplog.text
