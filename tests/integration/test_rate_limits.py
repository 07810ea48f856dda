"""Rate limits (issue 27), on the embedded defaults (each process's memory) and on Redis: a
client over a policy gets 429 quota-exceeded with Retry-After while another is served, and is
served again once it has waited; the RateLimit fields count down in the draft's Structured
Fields syntax; a Redis that does not answer fails open, counted in /metrics; two apps on one
Redis share one limit. Policies are shrunk to 3 requests per 2 s through the environment."""

import time
import uuid
from typing import Any

import http_sfv
import pytest

from devstack.throwaway import mint
from service_kit.config import auth_settings
from service_kit.http import rate_limits
from tests.integration.stack import build_stack, new_product

QUOTA, WINDOW = 3, 2
SMALL = f"{QUOTA}/{WINDOW}"
LIMITS = {
    "RATE_LIMIT_FACTOR": "1",
    "PRODUCT_RATE_LIMITS": f"product-reads={SMALL},per-client={SMALL}",
    "ORDER_RATE_LIMITS": f"order-writes={SMALL},per-client={SMALL}",
}


@pytest.fixture
def env(service_env: dict[str, str]) -> dict[str, str]:
    return {**service_env, **LIMITS}


def a_subject(env: dict[str, str]) -> dict[str, str]:
    """The headers of a client of its own: a fresh subject (so no other test's counts)."""
    scopes = ["orders:read", "orders:write", "products:write"]
    token = mint(auth_settings(env), scopes, subject=f"client-{uuid.uuid4().hex[:8]}")
    return {"Authorization": f"Bearer {token}"}


def an_address() -> dict[str, str]:
    """The environ of an anonymous client at an address of its own."""
    return {"REMOTE_ADDR": f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"}


def standing(response: Any) -> tuple[dict[str, tuple[int, int]], dict[str, tuple[int, int]]]:
    """(policy → (q, w), policy → (r, t)) read as Structured Fields lists."""
    policies, current = http_sfv.List(), http_sfv.List()
    policies.parse(response.headers["RateLimit-Policy"].encode())
    current.parse(response.headers["RateLimit"].encode())
    return (
        {item.value: (item.params["q"], item.params["w"]) for item in policies},
        {item.value: (item.params["r"], item.params["t"]) for item in current},
    )


def assert_quota_exceeded(response: Any, policy: str) -> int:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["type"] == rate_limits.QUOTA_EXCEEDED
    assert problem["policy"] == policy and problem["status"] == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= WINDOW * 2
    assert standing(response)[1][policy][0] == 0
    return retry_after


def exhaust(call: Any, policy: str) -> int:
    """Uses the client's quota up, checking the fields count down; its Retry-After once over."""
    last_reset = WINDOW
    for expected_left in range(QUOTA - 1, -1, -1):
        response = call()
        assert response.status_code < 400, response.get_data(as_text=True)
        policies, current = standing(response)
        assert policies[policy] == (QUOTA, WINDOW)
        left, reset = current[policy]
        assert left == expected_left and 0 <= reset <= last_reset
        last_reset = reset
    return assert_quota_exceeded(call(), policy)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "pipeline"])
def test_post_orders_is_limited_per_subject(env: dict[str, str], fast_path: bool) -> None:
    stack = build_stack(env, fast_path=fast_path)
    product_id = new_product(stack.product.test_client(), qty=1000)["id"]
    orders = stack.order.test_client()
    first, second = a_subject(env), a_subject(env)

    def order(who: dict[str, str]) -> Any:
        return orders.post("/orders", json={"productId": product_id, "qty": 1}, headers=who)

    retry_after = exhaust(lambda: order(first), "order-writes")
    assert order(second).status_code == 201  # another subject meanwhile
    time.sleep(retry_after)
    assert order(first).status_code == 201


def test_get_product_is_limited_per_address(env: dict[str, str]) -> None:
    stack = build_stack(env)
    product_id = new_product(stack.product.test_client())["id"]
    anonymous = stack.product.test_client()
    anonymous.environ_base.pop("HTTP_AUTHORIZATION")
    first, second = an_address(), an_address()

    def read(where: dict[str, str]) -> Any:
        return anonymous.get(f"/products/{product_id}", environ_base=where)

    retry_after = exhaust(lambda: read(first), "product-reads")
    assert read(second).status_code == 200  # another address meanwhile
    time.sleep(retry_after)
    assert read(first).status_code == 200


def test_a_pipeline_operation_is_limited(env: dict[str, str]) -> None:
    """GET /orders/product/{id} takes a query: Connexion's pipeline serves it."""
    orders = build_stack(env).order.test_client()
    first, second = a_subject(env), a_subject(env)

    def page(who: dict[str, str]) -> Any:
        return orders.get("/orders/product/1?limit=5", headers=who)

    retry_after = exhaust(lambda: page(first), "per-client")
    assert page(second).status_code == 200
    time.sleep(retry_after)
    assert page(first).status_code == 200


def test_unauthenticated_requests_get_their_401_unchecked(env: dict[str, str]) -> None:
    orders = build_stack(env).order.test_client()
    for _ in range(QUOTA + 1):
        response = orders.post(
            "/orders", json={"productId": 1, "qty": 1}, headers={"Authorization": ""}
        )
        assert response.status_code == 401 and "RateLimit" not in response.headers


def test_redis_not_answering_fails_open_and_is_counted(env: dict[str, str]) -> None:
    dead = {**env, "ORDER_REDIS_URL": "redis://127.0.0.1:1/0"}  # nothing listens on port 1
    stack = build_stack(dead)
    product_id = new_product(stack.product.test_client(), qty=1000)["id"]
    orders = stack.order.test_client()
    before = _failures(orders)
    who = a_subject(env)
    for _ in range(QUOTA + 2):
        response = orders.post("/orders", json={"productId": product_id, "qty": 1}, headers=who)
        assert response.status_code == 201 and "RateLimit" not in response.headers
    assert _failures(orders) - before == QUOTA + 2


def _failures(client: Any) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    line = 'http_server_rate_limiter_failures_total{operation="create_order"} '
    return sum(float(row[len(line) :]) for row in text.splitlines() if row.startswith(line))


def test_two_apps_on_one_redis_share_a_limit(redis_url: str, env: dict[str, str]) -> None:
    shared = {**env, "REDIS_URL": redis_url}
    one, two = build_stack(shared), build_stack(shared)
    product_id = new_product(one.product.test_client(), qty=1000)["id"]
    who = a_subject(env)
    clients = [one.order.test_client(), two.order.test_client()]
    statuses = [
        clients[n % 2]
        .post("/orders", json={"productId": product_id, "qty": 1}, headers=who)
        .status_code
        for n in range(QUOTA + 1)
    ]
    assert statuses == [201] * QUOTA + [429]
