"""The seed's curl flow and malformed requests against both services running as real gunicorn
processes, on SQLite and on the real MariaDB."""

import time

import httpx
import pytest

from tests.e2e.processes import running_stack

PROBLEM = "application/problem+json"


@pytest.fixture
def stack(database_urls, tmp_path):
    with running_stack(database_urls, tmp_path) as running:
        yield running


@pytest.fixture
def products(stack):
    with httpx.Client(base_url=stack.product_url, timeout=10) as client:
        yield client


@pytest.fixture
def orders(stack):
    with httpx.Client(base_url=stack.order_url, timeout=10) as client:
        yield client


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["requestId"] == response.headers["x-request-id"]
    return body


def test_seed_flow(stack, products, orders):
    created = products.post("/products", json={"name": "Laptop Demo", "price": 1500, "qty": 50})
    assert created.status_code == 201
    product = created.json()
    assert created.headers["location"] == f"/products/{product['id']}"
    assert products.get(created.headers["location"]).json() == product

    placed = orders.post(
        "/orders",
        json={"productId": product["id"], "qty": 2},
        headers={"X-Request-ID": "e2e-order-1"},
    )
    assert placed.status_code == 201
    order = placed.json()
    assert (order["totalPrice"], order["status"], order["qty"]) == (3000, "PENDING", 2)
    assert placed.headers["x-request-id"] == "e2e-order-1"

    listed = orders.get(f"/orders/product/{product['id']}").json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]

    view = products.get(
        f"/products/{product['id']}/with-orders", headers={"X-Request-ID": "e2e-bff-1"}
    )
    assert view.status_code == 200
    assert view.json() == {"product": product, "orders": {"available": True, "items": [order]}}

    updated = products.put(
        f"/products/{product['id']}", json={"name": "Laptop Demo", "price": 1400, "qty": 48}
    )
    assert updated.status_code == 200 and updated.json()["price"] == 1400
    assert products.delete(f"/products/{product['id']}").status_code == 204
    _problem(products.get(f"/products/{product['id']}"), 404)

    # The caller's request id reached the other service (order → product, BFF → order) and
    # is on its log lines.
    time.sleep(0.3)  # let the access log line be written
    assert "rid=e2e-order-1" in stack.log_of("product")
    assert "rid=e2e-bff-1" in stack.log_of("order")


def test_order_of_unknown_product_is_422(orders):
    _problem(orders.post("/orders", json={"productId": 2147483647, "qty": 1}), 422)


def test_malformed_requests_over_real_sockets(products, orders):
    json_header = {"Content-Type": "application/json"}
    cases = [
        (products.post("/products", content=b"{nope", headers=json_header), 400),
        (products.post("/products", json={"name": "x"}), 400),
        (products.post("/products", json={"name": "x", "price": -1, "qty": 1}), 400),
        (
            products.post("/products", content=b"name=x", headers={"Content-Type": "text/plain"}),
            415,
        ),
        (products.post("/products", content=b"x" * (2 * 1024 * 1024), headers=json_header), 413),
        (orders.post("/orders", content=b"[" * 100_000, headers=json_header), 400),
        (orders.post("/orders", json={"productId": 1, "qty": 10**12}), 400),
        (orders.get("/orders/0"), 400),
        (orders.get("/no/such/path"), 404),
        (orders.patch("/orders", json={}), 405),
        (products.get("/products/99999999999"), 400),
    ]
    for response, status in cases:
        _problem(response, status)
    # The services are still healthy after all of that.
    assert products.get("/health").status_code == 200
    assert orders.get("/health").status_code == 200
