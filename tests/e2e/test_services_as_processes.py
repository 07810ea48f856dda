"""The seed's flows against both services and both workers running as real processes, on the
embedded defaults (SQLite, file cache, local spool) and on the real MariaDB, Redis and RabbitMQ."""

import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import psutil
import pytest

from devstack.processes import running_stack
from devstack.throwaway import bearer
from service_kit.process.worker import autogroup, session_nice
from tests.conftest import BACKENDS, backend_database_urls, backend_env

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module", params=BACKENDS)
def stack(request, tmp_path_factory):
    """One stack per backend for the whole module: each test makes its own products and orders
    and stops nothing, and a stack takes seconds to start."""
    folder = tmp_path_factory.mktemp(f"stack-{request.param}")
    urls = backend_database_urls(request.param, request, folder)
    with running_stack(backend_env(request.param, urls, request, folder), folder) as running:
        yield running


@pytest.fixture
def products(stack):
    with stack.client("product") as client:
        yield client


@pytest.fixture
def orders(stack):
    with stack.client("order") as client:
        yield client


def eventually(probe: Callable[[], Any], *, within_s: float) -> tuple[Any, float]:
    """Poll `probe` until it returns something truthy; that value and how long it took."""
    started = time.monotonic()
    while True:
        value = probe()
        elapsed = time.monotonic() - started
        if value or elapsed > within_s:
            return value, elapsed
        time.sleep(0.02)


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
    location = created.headers["location"]
    assert location == f"/products/{product['id']}"
    assert products.get(location).json() == product  # now served from the cache

    placed = orders.post(
        "/orders",
        json={"productId": product["id"], "qty": 2},
        headers={"X-Request-ID": "e2e-order-1"},
    )
    assert placed.status_code == 201
    order = placed.json()
    assert (order["totalPrice"], order["status"], order["qty"]) == (3000, "PENDING", 2)
    assert placed.headers["x-request-id"] == "e2e-order-1"

    # order.created → product worker: stock 50 → 48, cache invalidated and warmed;
    # stock.reserved → order worker: CONFIRMED.
    stock, took = eventually(lambda: products.get(location).json()["qty"] == 48, within_s=5)
    assert stock, "the stock never went down to 48"
    assert took <= 1.0, f"the stock change took {took:.2f}s to show"
    confirmed, _ = eventually(
        lambda: orders.get(f"/orders/{order['id']}").json()["status"] == "CONFIRMED", within_s=5
    )
    assert confirmed
    logged, _ = eventually(
        lambda: f"order.created order={order['id']} " in stack.log_of("order-worker"), within_s=5
    )
    assert logged
    line = next(
        line
        for line in stack.log_of("order-worker").splitlines()
        if f"order.created order={order['id']} " in line
    )
    assert "rid=e2e-order-1" in line and f"product={product['id']} qty=2" in line

    listed = orders.get(f"/orders/product/{product['id']}").json()
    assert [(o["id"], o["status"]) for o in listed["items"]] == [(order["id"], "CONFIRMED")]

    view = products.get(
        f"/products/{product['id']}/with-orders", headers={"X-Request-ID": "e2e-bff-1"}
    )
    assert view.status_code == 200
    assert view.json()["orders"] == {"available": True, "items": listed["items"]}
    assert view.json()["product"]["qty"] == 48

    current = products.get(location).headers["ETag"]  # the version this edit is based on
    updated = products.put(
        location,
        json={"name": "Laptop Demo", "price": 1400, "qty": 48},
        headers={"If-Match": current},
    )
    assert updated.status_code == 200 and updated.json()["price"] == 1400
    assert products.get(location).json()["price"] == 1400
    assert products.delete(location).status_code == 204
    _problem(products.get(location), 404)
    # The BFF's call carried the caller's request id into order-service's log.
    assert "rid=e2e-bff-1" in stack.log_of("order")
    assert 'gunicorn.access rid=e2e-bff-1 127.0.0.1 "GET /orders/product/' in stack.log_of("order")


def test_an_order_with_an_oversized_tracestate_is_confirmed(stack, products, orders):
    """A caller's 4,000-character tracestate is bounded at the edge (W3C: 512 characters), so
    the order's events still meet events.yaml and nothing is dead-lettered."""
    product = products.post("/products", json={"name": "Traced", "price": 3, "qty": 5}).json()
    tracestate = ",".join(f"vendor{n}=" + "v" * 120 for n in range(30))
    assert len(tracestate) >= 3800
    headers = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "tracestate": tracestate + ",x=" + "y" * (4000 - len(tracestate) - 3),
    }
    assert len(headers["tracestate"]) == 4000
    placed = orders.post("/orders", json={"productId": product["id"], "qty": 2}, headers=headers)
    assert placed.status_code == 201, placed.text
    url = f"/orders/{placed.json()['id']}"
    status, _ = eventually(
        lambda: orders.get(url).json()["status"] != "PENDING" and orders.get(url).json()["status"],
        within_s=30,
    )
    assert status == "CONFIRMED"
    for worker in ("product-worker", "order-worker"):
        metrics = httpx.get(stack.metrics_urls[worker]).text
        assert "consumer_events_dead_lettered_total{" not in metrics or all(
            line.endswith(" 0.0")
            for line in metrics.splitlines()
            if line.startswith("consumer_events_dead_lettered_total{")
        ), metrics


def test_workers_yield_the_cpu_to_the_web_workers(stack):
    for name, process in stack.processes.items():
        expected = 19 if name.endswith("-worker") else 0
        assert psutil.Process(process.pid).nice() == expected, name
        for thread in psutil.Process(process.pid).threads():  # each thread has its own on Linux
            assert os.getpriority(os.PRIO_PROCESS, thread.id) == expected, name
        # Each process leads its own session here; where the kernel groups sessions for the
        # CPU (autogroups), the worker's whole group yields too.
        if autogroup(process.pid).exists():  # a kernel with autogroups
            assert session_nice(process.pid) == expected, name


def test_order_of_unknown_product_asks_product_service(stack, orders):
    response = orders.post(
        "/orders", json={"productId": 2147483000, "qty": 1}, headers={"X-Request-ID": "e2e-unk"}
    )
    _problem(response, 422)
    time.sleep(0.3)  # let the access log line be written
    assert "rid=e2e-unk" in stack.log_of("product")  # the request id went along


def settled_statuses(orders: httpx.Client, product_id: int) -> dict[str, int] | None:
    """How many of the product's orders are in each status, once none is PENDING."""
    counts: dict[str, int] = {}
    before = None
    while True:
        query = {"limit": 100} if before is None else {"limit": 100, "before": before}
        page = orders.get(f"/orders/product/{product_id}", params=query).json()
        for item in page["items"]:
            counts[item["status"]] = counts.get(item["status"], 0) + 1
        if (before := page["nextBefore"]) is None:
            return counts if "PENDING" not in counts else None


def test_concurrent_orders_never_oversell(stack, products, orders):
    product = products.post("/products", json={"name": "Scarce", "price": 10, "qty": 50}).json()

    def order_one(_: int) -> int:
        with stack.client("order", timeout=30) as client:
            return client.post("/orders", json={"productId": product["id"], "qty": 1}).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(order_one, range(200)))
    assert statuses == [201] * 200

    counts, _ = eventually(lambda: settled_statuses(orders, product["id"]), within_s=30)
    assert counts == {"CONFIRMED": 50, "REJECTED": 150}
    assert products.get(f"/products/{product['id']}").json()["qty"] == 0


def test_restocks_race_with_orders_and_no_unit_is_lost(stack, products, orders):
    product = products.post("/products", json={"name": "Restocked", "price": 10, "qty": 50})
    first_tag, product = product.headers["ETag"], product.json()
    url = f"/products/{product['id']}"

    def order_one(_: int) -> int:
        with stack.client("order", timeout=30) as client:
            body = {"productId": product["id"], "qty": 1}
            return client.post("/orders", json=body).status_code

    def restock(n: int) -> int:
        with stack.client("product", timeout=30) as client:
            key = {"Idempotency-Key": f"restock-{product['id']}-{n}"}
            body = {"delta": 10, "reason": f"delivery {n}"}
            return client.post(f"{url}/stock-adjustments", json=body, headers=key).status_code

    with ThreadPoolExecutor(max_workers=40) as pool:
        placed = pool.map(order_one, range(200))
        restocked = pool.map(restock, range(20))
        placed, restocked = list(placed), list(restocked)
    assert set(placed) <= {201, 409} and restocked == [200] * 20

    counts, _ = eventually(lambda: settled_statuses(orders, product["id"]), within_s=60)
    assert sum(counts.values()) == placed.count(201)
    final = products.get(url).json()
    assert final["qty"] == 50 + 20 * 10 - counts.get("CONFIRMED", 0) >= 0
    # Every reservation and restock made a new version: a write based on the first is stale.
    stale = products.put(
        url, json={"name": "x", "price": 1, "qty": 1000}, headers={"If-Match": first_tag}
    )
    _problem(stale, 412)
    assert products.get(url).json()["qty"] == final["qty"]


def test_fifty_concurrent_orders_with_one_key_make_one_order(stack, products, orders):
    # Two web workers, each group-committing its own batches: the key meets itself across
    # processes (one INSERT waits for the other's commit) and within a batch.
    product = products.post("/products", json={"name": "Keyed", "price": 10, "qty": 500}).json()
    body, key = {"productId": product["id"], "qty": 1}, {"Idempotency-Key": str(uuid.uuid4())}

    def order_one(_: int) -> httpx.Response:
        with stack.client("order", timeout=30) as client:
            return client.post("/orders", json=body, headers=key)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(order_one, range(50)))
    assert {answer.status_code for answer in answers} == {201}
    assert len({answer.content for answer in answers}) == 1  # the same order, byte for byte
    listed = orders.get(f"/orders/product/{product['id']}").json()["items"]
    assert [order["id"] for order in listed] == [answers[0].json()["id"]]
    _problem(orders.post("/orders", json={**body, "qty": 2}, headers=key), 422)
    # One order.created: the product worker reserved one unit, once.
    eventually(
        lambda: products.get(f"/products/{product['id']}").json()["qty"] == 499 or None,
        within_s=30,
    )
    time.sleep(1)
    assert products.get(f"/products/{product['id']}").json()["qty"] == 499


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


def test_unusual_request_headers_over_real_sockets(stack):
    host, port = stack.order_url.removeprefix("http://").split(":")
    body = b'{"productId": 2147483000, "qty": 1}'  # no such product

    def status_of(head: bytes) -> bytes:
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            return connection.recv(64).split(b"\r\n", 1)[0]

    json_post = (
        b"POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + b"Authorization: %s\r\n" % bearer(stack.env)["Authorization"].encode()
    )
    # Plain headers are served (422: no such product); a folded line is refused.
    assert status_of(json_post + b"X-Note: a\r\n") == b"HTTP/1.1 422 UNPROCESSABLE ENTITY"
    assert status_of(json_post + b"X-Note: a\r\n  b\r\n") == b"HTTP/1.1 400 Bad Request"
    # Header sections over 32 KiB in all, or of more than 100 fields: 431, no traceback.
    too_large = b"HTTP/1.1 431 Request Header Fields Too Large"
    assert status_of(json_post + b"X-Note: " + b"a" * 70_000 + b"\r\n") == too_large
    many = b"".join(b"X-%d: y\r\n" % n for n in range(101))
    big = b"".join(b"X-%d: %s\r\n" % (n, b"y" * 5000) for n in range(7))
    assert status_of(json_post + many) == too_large
    assert status_of(json_post + big) == too_large
    # A terminal escape sequence in the request line is refused, and never reaches the log raw.
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(b"GET /health/\x1b[2J HTTP/1.1\r\nHost: x\r\n\r\n")
        assert connection.recv(64).startswith(b"HTTP/1.1 400")
    time.sleep(0.3)  # let the log lines be written
    assert "Traceback" not in stack.log_of("order")
    assert stack.log_of("order").count("gunicorn.access") >= 1
    assert "\x1b" not in stack.log_of("order")


SMUGGLED = b"GET /orders/9999999 HTTP/1.1\r\nHost: x\r\n\r\n"  # a 404 if it ever ran
AMBIGUOUS = {
    "two chunked": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "gzip, chunked": b"Transfer-Encoding: gzip, chunked\r\n",
    "chunked, identity": b"Transfer-Encoding: chunked, identity\r\n",
    "an unknown coding": b"Transfer-Encoding: identity\r\n",
    "chunked and a length": b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
    "space before the colon": b"Content-Length : 4\r\n",
    "a line without a colon": b"Content-Length 4\r\n",
    "a bare CR": b"X: a\rContent-Length: 4\r\n",
    "two lengths": b"Content-Length: 4\r\nContent-Length: 40\r\n",
    "two equal lengths": b"Content-Length: 4\r\nContent-Length: 4\r\n",
    "a signed length": b"Content-Length: +4\r\n",
    "a length with _": b"Content-Length: 0_4\r\n",
    "a folded line": b"X: a\r\n Content-Length: 4\r\n",
    "NUL in a value": b"X: a\x00b\r\n",
    "a second Host": b"Host: y\r\n",
}
CHUNKED = b"Transfer-Encoding: chunked\r\n"
BAD_CHUNKS = {
    "a chunk size line ending in a bare LF": b"4\nbody\r\n0\r\n\r\n",
    "a 0x chunk size": b"0x4\r\nbody\r\n0\r\n\r\n",
    "a chunk size with trailing junk": b"0 x\r\n\r\n",
    "no CRLF after chunk data": b"4\r\nbodyX\r\n0\r\n\r\n",
    "a bad trailer": b"0\r\nX y\r\n\r\n",
}
REQUEST_LINES = {
    "no Host": b"POST /orders HTTP/1.1\r\nContent-Type: application/json\r\n\r\n",
    "HTTP/1.0 with Transfer-Encoding": b"POST /orders HTTP/1.0\r\n" + CHUNKED + b"\r\n0\r\n\r\n",
    "an upgrade": b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    "HTTP/0.9": b"GET /health\r\n\r\n",
    "a fourth word": b"GET /health HTTP/1.1 x\r\nHost: x\r\n\r\n",
    "HTTP/2.0 in text": b"GET /health HTTP/2.0\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("service", ["order", "product"])
def test_every_ambiguous_request_is_one_400_and_nothing_behind_it_runs(stack, service):
    url = getattr(stack, f"{service}_url")
    host, port = url.removeprefix("http://").split(":")
    post = b"POST /orders HTTP/1.1\r\nHost: x\r\n"
    requests = (
        {name: post + headers + b"\r\nbody" + SMUGGLED for name, headers in AMBIGUOUS.items()}
        | {name: post + CHUNKED + b"\r\n" + body + SMUGGLED for name, body in BAD_CHUNKS.items()}
        | {name: line + SMUGGLED for name, line in REQUEST_LINES.items()}
    )
    for name, request in requests.items():
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(request)
            answer = b""
            while chunk := connection.recv(65536):  # until the server closes the connection
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 "), (name, answer[:80])
        assert answer.count(b"HTTP/1.1 ") == 1, (name, answer)
        assert b"application/problem+json" in answer, (name, answer)
    time.sleep(0.3)  # let the log lines be written
    assert "Traceback" not in stack.log_of(service)
    assert '"GET /orders/9999999' not in stack.log_of(service)


def test_the_web_services_listen_on_the_loopback_only_by_default(stack):
    for service in ("product", "order"):
        master = psutil.Process(stack.processes[service].pid)
        listening = {
            connection.laddr.ip
            for process in (master, *master.children())
            for connection in process.net_connections(kind="inet")
            if connection.status == psutil.CONN_LISTEN
        }
        assert listening == {"127.0.0.1"}, (service, listening)


def test_no_gunicorn_control_socket_is_opened(stack):
    # Its default path is one per user: the two services would have shared it.
    for service in ("product", "order"):
        assert "Control socket" not in stack.log_of(service)


@pytest.mark.parametrize(("service", "path"), [("order", "/orders"), ("product", "/products")])
def test_a_body_shorter_than_its_length_is_a_400_problem(stack, service, path):
    # POST /orders takes the fast path, POST /products Connexion's pipeline: the same answer.
    url = getattr(stack, f"{service}_url")
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        authorization = bearer(stack.env)["Authorization"]
        connection.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".encode()
            + f"Authorization: {authorization}\r\n".encode()
            + b'Content-Length: 40\r\n\r\n{"productId": 1,'
        )
        connection.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["title"] == "Bad Request"
    time.sleep(0.3)  # let the log lines be written
    assert "Traceback" not in stack.log_of(service)
