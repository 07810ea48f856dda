"""Who sees which order, on the fast path and on Connexion's pipeline, on both backends: a
caller with `orders:read` reads and lists the orders it placed only (another's is 404, as a
missing one), `orders:read:all` reads every order, and the BFF shows what its caller may see."""

import pytest

from devstack.throwaway import bearer
from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product


@pytest.fixture(params=[True, False], ids=["fast-path", "pipeline"])
def stack(service_env, request):
    return build_stack(service_env, fast_path=request.param)


@pytest.fixture
def tokens(service_env):
    def token(subject: str, *scopes: str) -> dict[str, str]:
        return bearer(service_env, list(scopes), subject=subject)

    return {
        "alice": token("alice", "orders:read", "orders:write"),
        "Alice": token("Alice", "orders:read", "orders:write"),
        "bob": token("bob", "orders:read", "orders:write"),
        "back-office": token("carol", "orders:read", "orders:read:all"),
    }


def test_an_order_is_read_by_its_owner_and_the_back_office_only(stack, tokens):
    product = new_product(stack.product.test_client(), price=10, qty=50)
    orders = stack.order.test_client()
    placed = orders.post(
        "/orders", json={"productId": product["id"], "qty": 1}, headers=tokens["alice"]
    )
    assert placed.status_code == 201
    order = placed.get_json()
    assert "owner" not in order
    url = f"/orders/{order['id']}"
    assert orders.get(url, headers=tokens["alice"]).get_json() == order
    assert orders.get(url, headers=tokens["back-office"]).get_json() == order
    for other in ("bob", "Alice"):  # subjects compare byte for byte
        hidden = assert_problem(orders.get(url, headers=tokens[other]), 404)
        missing = assert_problem(orders.get("/orders/9000000000", headers=tokens[other]), 404)
        assert hidden["detail"] == f"order {order['id']} does not exist"
        assert (hidden["title"], hidden["type"]) == (missing["title"], missing["type"])


def test_a_list_holds_the_callers_orders_only(stack, tokens):
    product = new_product(stack.product.test_client(), price=10, qty=50)
    orders, products = stack.order.test_client(), stack.product.test_client()
    placed = {
        who: orders.post(
            "/orders", json={"productId": product["id"], "qty": 1}, headers=tokens[who]
        ).get_json()["id"]
        for who in ("alice", "bob")
    }
    expected = {"alice": [placed["alice"]], "bob": [placed["bob"]], "Alice": []}
    expected["back-office"] = [placed["bob"], placed["alice"]]
    for _ in range(3):  # the first read starts the list version, the next ones hit the cache
        for who, ids in expected.items():
            page = orders.get(f"/orders/product/{product['id']}", headers=tokens[who])
            assert [o["id"] for o in page.get_json()["items"]] == ids, who
            bff = products.get(f"/products/{product['id']}/with-orders", headers=tokens[who])
            assert bff.get_json()["orders"]["available"] is True
            assert [o["id"] for o in bff.get_json()["orders"]["items"]] == ids, who
