"""product-service through its HTTP contract, on SQLite and on the real MariaDB."""

import decimal
import logging

import pytest

from service_kit import logs
from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product

MB = 1024 * 1024


@pytest.fixture
def stack(service_env):
    return build_stack(service_env)


@pytest.fixture
def products(stack):
    return stack.product.test_client()


def test_create_then_get_returns_the_same_product(products):
    response = products.post(
        "/products",
        json={"name": "Laptop Demo", "price": 1500, "qty": 50},
        headers={"X-Request-ID": "create-1"},
    )
    assert response.status_code == 201
    assert response.headers["X-Request-ID"] == "create-1"
    created = response.get_json()
    assert response.headers["Location"] == f"/products/{created['id']}"
    assert created["name"] == "Laptop Demo" and created["qty"] == 50
    assert created["price"] == 1500
    assert created["createdAt"] == created["updatedAt"]
    assert created["createdAt"].endswith("Z")

    fetched = products.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.get_json() == created


def test_money_is_exact(products):
    # 0.1 + 0.2 style values must round-trip digit for digit, both ways.
    created = new_product(products, price=decimal.Decimal("19.99"))
    raw = products.get(f"/products/{created['id']}").get_data(as_text=True)
    assert '"price":19.99' in raw
    big = new_product(products, price=decimal.Decimal("99999999.99"))
    assert '"price":99999999.99' in products.get(f"/products/{big['id']}").get_data(as_text=True)


def test_list_pages_by_ascending_id(products):
    start = new_product(products)["id"]
    ids = [new_product(products, name=f"p{i}")["id"] for i in range(3)]
    first = products.get(f"/products?limit=2&after={start}").get_json()
    assert [p["id"] for p in first["items"]] == ids[:2]
    assert first["nextAfter"] == ids[1]
    second = products.get(f"/products?limit=2&after={first['nextAfter']}").get_json()
    assert [p["id"] for p in second["items"]] == ids[2:]
    assert second["nextAfter"] is None


def test_update_replaces_fields_and_404_when_missing(products):
    created = new_product(products)
    response = products.put(
        f"/products/{created['id']}",
        json={"name": "Renamed", "price": 1450.5, "qty": 40},
        headers={"If-Match": '"1"'},
    )
    assert response.status_code == 200
    updated = response.get_json()
    assert (updated["name"], updated["price"], updated["qty"]) == ("Renamed", 1450.5, 40)
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] >= created["updatedAt"]
    missing = products.put(
        "/products/2147483647", json={"name": "x", "price": 1, "qty": 1}, headers={"If-Match": "*"}
    )
    assert_problem(missing, 404)


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "pipeline"])
def test_every_answer_with_a_product_carries_its_version_as_etag(service_env, fast_path):
    products = build_stack(service_env, fast_path=fast_path).product.test_client()
    created = products.post("/products", json={"name": "Tagged", "price": 3, "qty": 4})
    assert created.headers["ETag"] == '"1"' and created.get_json()["version"] == 1
    url = f"/products/{created.get_json()['id']}"
    assert products.get(url).headers["ETag"] == '"1"'
    held = products.get(url, headers={"If-None-Match": '"1"', "X-Request-ID": "held"})
    assert held.status_code == 304 and held.data == b""
    assert held.headers["ETag"] == '"1"' and held.headers["X-Request-ID"] == "held"
    assert "Content-Type" not in held.headers
    assert products.get(url, headers={"If-None-Match": 'W/"7", "1"'}).status_code == 304
    assert products.get(url, headers={"If-None-Match": '"7"'}).status_code == 200


def test_a_put_must_be_based_on_the_current_version(products):
    product = new_product(products, qty=10)
    url, body = f"/products/{product['id']}", {"name": "Edited", "price": 5, "qty": 10}
    required = products.put(url, json=body)
    assert "If-Match" in assert_problem(required, 428)["detail"]
    assert_problem(products.put(url, json=body, headers={"If-Match": '"2"'}), 412)
    assert_problem(products.put(url, json=body, headers={"If-Match": 'W/"1"'}), 412)  # strong
    first = products.put(url, json=body, headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.headers["ETag"] == '"2"'
    assert_problem(products.put(url, json=body, headers={"If-Match": '"1"'}), 412)  # lost update
    assert products.put(url, json=body, headers={"If-Match": '"5", "2"'}).status_code == 200
    assert_problem(products.delete(url, headers={"If-Match": '"2"'}), 412)
    assert products.delete(url, headers={"If-Match": '"3"'}).status_code == 204


@pytest.mark.parametrize(
    "tag", ['"99999999999999999999"', '"2147483648"', '"' + "9" * 40 + '"', '"\u0663"']
)
def test_an_etag_no_version_can_have_is_a_412(products, tag):
    product = new_product(products, qty=10)
    url, body = f"/products/{product['id']}", {"name": "Edited", "price": 5, "qty": 10}
    assert_problem(products.put(url, json=body, headers={"If-Match": tag}), 412)
    assert_problem(products.delete(url, headers={"If-Match": tag}), 412)


def test_a_reason_cannot_forge_a_text_log_line(products, capfd):
    product = new_product(products, qty=5)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    logs.configure("INFO", "text")
    try:
        forged = "restock\n2026-12-03 10:00:00,000 WARNING [1] forged rid=- all stock lost\r\u2028"
        answer = products.post(
            f"/products/{product['id']}/stock-adjustments", json={"delta": 1, "reason": forged}
        )
        assert answer.status_code == 200
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = [line for line in capfd.readouterr().err.splitlines() if "adjusted by" in line]
    assert len(lines) == 1
    assert lines[0].endswith(
        "restock\\n2026-12-03 10:00:00,000 WARNING [1] forged rid=- all stock lost\\r\\u2028"
    )


def test_stock_adjustments_add_and_take_units(products):
    product = new_product(products, qty=5)
    url = f"/products/{product['id']}/stock-adjustments"
    key = {"Idempotency-Key": f"restock-{product['id']}"}
    added = products.post(url, json={"delta": 10, "reason": "restock"}, headers=key)
    assert added.status_code == 200 and added.get_json()["qty"] == 15
    assert added.headers["ETag"] == '"2"'
    again = products.post(url, json={"delta": 10, "reason": "restock"}, headers=key)
    assert again.get_data() == added.get_data()  # replayed: still 15
    assert products.get(f"/products/{product['id']}").get_json()["qty"] == 15
    assert_problem(products.post(url, json={"delta": -16, "reason": "more than there is"}), 409)
    assert_problem(products.post(url, json={"delta": 0, "reason": "nothing"}), 400)
    missing = "/products/2147483647/stock-adjustments"
    assert_problem(products.post(missing, json={"delta": 1, "reason": "x"}), 404)


def test_delete_then_get_is_404(products):
    created = new_product(products)
    deleted = products.delete(f"/products/{created['id']}")
    assert deleted.status_code == 204
    assert deleted.data == b"" and "Content-Type" not in deleted.headers
    assert_problem(products.delete(f"/products/{created['id']}"), 404)
    body = assert_problem(products.get(f"/products/{created['id']}"), 404)
    assert str(created["id"]) in body["detail"]


def test_with_orders_includes_the_products_orders(stack, products):
    product = new_product(products)
    orders = stack.order.test_client()
    placed = [orders.post("/orders", json={"productId": product["id"], "qty": q}) for q in (1, 2)]
    assert [r.status_code for r in placed] == [201, 201]
    response = products.get(
        f"/products/{product['id']}/with-orders", headers={"X-Request-ID": "bff-1"}
    )
    assert response.status_code == 200
    view = response.get_json()
    assert view["product"] == product
    assert view["orders"]["available"] is True
    assert [o["id"] for o in view["orders"]["items"]] == [
        placed[1].get_json()["id"],
        placed[0].get_json()["id"],
    ]


def test_with_orders_degrades_when_order_service_is_down(service_env):
    stack = build_stack(service_env, order_service_up=False)
    products = stack.product.test_client()
    product = new_product(products)
    response = products.get(f"/products/{product['id']}/with-orders")
    assert response.status_code == 200
    view = response.get_json()
    assert view["product"] == product
    assert view["orders"] == {
        "available": False,
        "items": [],
        "detail": view["orders"]["detail"],
    }
    assert "order-service" in view["orders"]["detail"]


def test_with_orders_of_unknown_product_is_404(products):
    assert_problem(products.get("/products/2147483647/with-orders"), 404)


VALID = {"name": "Laptop Demo", "price": 1500, "qty": 50}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/products", {"json": {"name": "x", "price": 1}}, 400),
        ("post", "/products", {"json": {}}, 400),
        ("post", "/products", {"json": {**VALID, "qty": "50"}}, 400),
        ("post", "/products", {"json": {**VALID, "price": "1500"}}, 400),
        ("post", "/products", {"json": {**VALID, "name": 5}}, 400),
        ("post", "/products", {"json": {**VALID, "qty": 1.5}}, 400),
        ("post", "/products", {"json": {**VALID, "qty": -1}}, 400),
        ("post", "/products", {"json": {**VALID, "price": -0.01}}, 400),
        ("post", "/products", {"json": {**VALID, "price": 1e300}}, 400),
        ("post", "/products", {"json": {**VALID, "price": 100000000}}, 400),
        ("post", "/products", {"json": {**VALID, "qty": 10**30}}, 400),
        ("post", "/products", {"json": {**VALID, "price": 0.001}}, 400),
        ("post", "/products", {"json": {**VALID, "name": ""}}, 400),
        ("post", "/products", {"json": {**VALID, "name": "   "}}, 400),
        ("post", "/products", {"json": {**VALID, "name": "n" * 201}}, 400),
        ("post", "/products", {"json": {**VALID, "extra": 1}}, 400),
        ("post", "/products", {"json": [VALID]}, 400),
        ("post", "/products", {"json": None}, 400),
        ("post", "/products", {"data": "{broken", "content_type": "application/json"}, 400),
        (
            "post",
            "/products",
            {"data": '{"name":"a","price":NaN,"qty":1}', "content_type": "application/json"},
            400,
        ),
        (
            "post",
            "/products",
            {"data": '{"name":"\\ud800","price":1,"qty":1}', "content_type": "application/json"},
            400,
        ),
        ("post", "/products", {"data": "name=x", "content_type": "text/plain"}, 415),
        (
            "post",
            "/products",
            {"data": "name=x&price=1&qty=1", "content_type": "application/x-www-form-urlencoded"},
            415,
        ),
        ("post", "/products", {"data": "x" * (2 * MB), "content_type": "application/json"}, 413),
        ("put", "/products/1", {"data": "x" * (2 * MB), "content_type": "application/json"}, 413),
        ("put", "/products/1", {"json": {"name": "x"}}, 400),
        ("get", "/products/0", {}, 400),
        ("get", "/products/-1", {}, 400),
        ("get", "/products/99999999999", {}, 400),
        ("get", "/products/abc", {}, 400),
        ("get", "/products?limit=0", {}, 400),
        ("get", "/products?limit=101", {}, 400),
        ("get", "/products?limit=x", {}, 400),
        ("get", "/products?after=-1", {}, 400),
        ("get", "/products?unknown=1", {}, 400),
        ("get", "/products/1/with-orders?limit=1000", {}, 400),
        ("get", "/nowhere", {}, 404),
        ("patch", "/products/1", {"json": VALID}, 405),
        ("delete", "/products", {}, 405),
    ],
)
def test_malformed_requests_get_a_4xx_problem(products, method, path, kwargs, status):
    response = getattr(products, method)(path, **kwargs)
    body = assert_problem(response, status)
    assert "Traceback" not in body["detail"] and "<html" not in response.get_data(as_text=True)
    if status == 405:
        assert "GET" in response.headers["Allow"] or "POST" in response.headers["Allow"]


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [("abc-123", True), ("a" * 128, True), ("a" * 129, False), ("bad id!", False), ("", False)],
)
def test_request_id_is_echoed_when_well_formed_else_generated(products, sent, echoed):
    response = products.get("/health", headers={"X-Request-ID": sent})
    assert response.status_code == 200
    returned = response.headers["X-Request-ID"]
    assert (returned == sent) is echoed
    assert 1 <= len(returned) <= 128


def test_health_and_ready(products):
    assert products.get("/health").get_json() == {"status": "ok"}
    checks = {"database": "ok", "cache": "ok", "broker": "ok"}
    assert products.get("/ready").get_json() == {"status": "ok", "checks": checks}


def test_database_down_gives_503_with_retry_after(service_env):
    unreachable = {**service_env, "PRODUCT_DATABASE_URL": "mysql+pymysql://root@127.0.0.1:9/none"}
    stack = build_stack(unreachable, order_service_up=False)
    products = stack.product.test_client()
    for response in (
        products.get("/products/2147480001"),  # never cached: only the database could answer
        products.post("/products", json=VALID),
        products.get("/ready"),
    ):
        assert_problem(response, 503)
        assert int(response.headers["Retry-After"]) >= 1


def test_spec_and_swagger_ui_are_served(products):
    spec = products.get("/openapi.json")
    assert spec.status_code == 200
    assert spec.get_json()["info"]["title"] == "product-service"
    ui = products.get("/ui/")
    assert ui.status_code == 200
    assert b"/openapi.json" in ui.data and b"swagger" in ui.data.lower()
