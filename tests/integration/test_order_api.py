"""order-service through its HTTP contract, with the real product-service app behind the
generated client, on SQLite and on the real MariaDB."""

import pytest

from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product

MB = 1024 * 1024


@pytest.fixture
def stack(service_env):
    return build_stack(service_env)


@pytest.fixture
def orders(stack):
    return stack.order.test_client()


@pytest.fixture
def product(stack):
    return new_product(stack.product.test_client(), price=1500, qty=50)


def test_order_is_priced_exactly_and_stored_pending(orders, product):
    response = orders.post(
        "/orders", json={"productId": product["id"], "qty": 2}, headers={"X-Request-ID": "o-1"}
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "o-1"
    order = response.get_json()
    assert response.headers["Location"] == f"/orders/{order['id']}"
    assert (order["productId"], order["qty"], order["status"]) == (product["id"], 2, "PENDING")
    assert order["totalPrice"] == 3000
    assert orders.get(response.headers["Location"]).get_json() == order


def test_total_price_has_no_binary_rounding(stack, orders):
    cheap = new_product(stack.product.test_client(), price=0.1, qty=10)
    response = orders.post("/orders", json={"productId": cheap["id"], "qty": 3})
    assert '"totalPrice":0.30' in response.get_data(as_text=True)
    odd = new_product(stack.product.test_client(), price=19.99, qty=10)
    response = orders.post("/orders", json={"productId": odd["id"], "qty": 7})
    assert '"totalPrice":139.93' in response.get_data(as_text=True)


def test_unknown_product_is_422(orders):
    body = assert_problem(orders.post("/orders", json={"productId": 2147483647, "qty": 1}), 422)
    assert "2147483647" in body["detail"]


def test_quantity_above_stock_is_409(orders, product):
    body = assert_problem(orders.post("/orders", json={"productId": product["id"], "qty": 51}), 409)
    assert "50" in body["detail"]
    assert orders.post("/orders", json={"productId": product["id"], "qty": 50}).status_code == 201


def test_product_service_down_is_503_with_retry_after(service_env):
    stack = build_stack(service_env, product_service_up=False)
    # A product order-service has never seen: it must ask product-service, which is down.
    response = stack.order.test_client().post("/orders", json={"productId": 2147480000, "qty": 1})
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) >= 1


def test_orders_of_product_newest_first_and_paged(orders, product):
    ids = [
        orders.post("/orders", json={"productId": product["id"], "qty": 1}).get_json()["id"]
        for _ in range(3)
    ]
    first = orders.get(f"/orders/product/{product['id']}?limit=2").get_json()
    assert [o["id"] for o in first["items"]] == [ids[2], ids[1]]
    assert first["nextBefore"] == ids[1]
    rest = orders.get(f"/orders/product/{product['id']}?limit=2&before={ids[1]}").get_json()
    assert [o["id"] for o in rest["items"]] == [ids[0]]
    assert rest["nextBefore"] is None


def test_orders_of_product_without_orders_is_an_empty_page(orders):
    page = orders.get("/orders/product/2147483647").get_json()
    assert page == {"items": [], "nextBefore": None}


def test_unknown_order_is_404(orders):
    assert_problem(orders.get("/orders/9223372036854775807"), 404)


VALID = {"productId": 1, "qty": 1}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/orders", {"json": {"productId": 1}}, 400),
        ("post", "/orders", {"json": {"qty": 1}}, 400),
        ("post", "/orders", {"json": {**VALID, "qty": 0}}, 400),
        ("post", "/orders", {"json": {**VALID, "qty": -3}}, 400),
        ("post", "/orders", {"json": {**VALID, "qty": 1000001}}, 400),
        ("post", "/orders", {"json": {**VALID, "qty": "2"}}, 400),
        ("post", "/orders", {"json": {**VALID, "qty": 2.5}}, 400),
        ("post", "/orders", {"json": {**VALID, "productId": 0}}, 400),
        ("post", "/orders", {"json": {**VALID, "productId": 2**31}}, 400),
        ("post", "/orders", {"json": {**VALID, "productId": None}}, 400),
        ("post", "/orders", {"json": {**VALID, "note": "x"}}, 400),
        ("post", "/orders", {"json": "order"}, 400),
        ("post", "/orders", {"data": '{"productId": 1,', "content_type": "application/json"}, 400),
        ("post", "/orders", {"data": "productId=1", "content_type": "text/plain"}, 415),
        ("post", "/orders", {"data": "x" * (2 * MB), "content_type": "application/json"}, 413),
        ("get", "/orders/0", {}, 400),
        ("get", "/orders/x", {}, 400),
        ("get", "/orders/product/null,null", {}, 400),
        ("get", "/orders/99999999999999999999", {}, 400),
        ("get", "/orders/product/0", {}, 400),
        ("get", "/orders/product/1?limit=0", {}, 400),
        ("get", "/orders/product/1?before=0", {}, 400),
        ("get", "/orders/product/1?page=2", {}, 400),
        ("get", "/orders/product", {}, 400),  # /orders/{id} with a non-integer id
        ("put", "/orders/1", {"json": VALID}, 405),
        ("delete", "/orders/1", {}, 405),
        ("get", "/nowhere", {}, 404),
    ],
)
def test_malformed_requests_get_a_4xx_problem(orders, method, path, kwargs, status):
    response = getattr(orders, method)(path, **kwargs)
    assert_problem(response, status)


def test_health_and_ready(orders):
    assert orders.get("/health").get_json() == {"status": "ok"}
    checks = {"database": "ok", "cache": "ok", "broker": "ok"}
    assert orders.get("/ready").get_json() == {"status": "ok", "checks": checks}
    assert orders.get("/ui/").status_code == 200


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "pipeline"])
@pytest.mark.parametrize("path", ["/orders//1", "//orders/1", "/orders/1/", "/orders/product//1"])
def test_no_redirect_is_built_from_the_host(service_env, fast_path, path):
    orders = build_stack(service_env, fast_path=fast_path).order.test_client()
    answer = orders.get(path, headers={"Host": "evil.example"})
    assert_problem(answer, 404)
    assert "Location" not in answer.headers
