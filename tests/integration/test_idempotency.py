"""Idempotency-Key on POST /orders (group-committed, fast path and pipeline) and POST /products:
a repeat gets the first answer and creates nothing; another body, operation or resource with the
key is refused; keys belong to their caller, compared byte for byte; an outcome the database
left unknown is said so, and the retry with the key then tells it."""

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from order_service.repository import GroupCommittedOrders, event_tables, orders
from product_service.repository import idempotency_keys
from product_service.repository import products as product_table
from service_kit import exact_json
from service_kit.errors import OutcomeUnknown
from service_kit.http import edge
from service_kit.idempotency import IdempotencyKey, KeyReused
from service_kit.storage.db import create_engine_for
from service_kit.storage.idempotency import IdempotencyRecords, KeyPruner
from tests.helpers import assert_problem
from tests.integration.stack import build_stack, new_product


@pytest.fixture(params=[True, False], ids=["fast-path", "pipeline"])
def stack(service_env, request):
    return build_stack(service_env, fast_path=request.param)


def count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def events_of_order(engine, order_id: int) -> int:
    with engine.connect() as connection:
        bodies = connection.execute(select(event_tables.outbox.c.body)).scalars().all()
    return sum(f'"id":{order_id},' in body for body in bodies)


def test_a_repeated_order_gets_its_first_answer_and_creates_nothing(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=50)
    orders_client = stack.order.test_client()
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"productId": product["id"], "qty": 2}
    first = orders_client.post("/orders", json=body, headers=key)
    again = orders_client.post("/orders", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    engine = create_engine_for(service_env["ORDER_DATABASE_URL"])
    assert count(engine, orders, productId=product["id"]) == 1
    assert events_of_order(engine, first.get_json()["id"]) == 1
    # Another body with that key: refused; without a key, or with another: a new order.
    other = orders_client.post("/orders", json={**body, "qty": 3}, headers=key)
    assert "Idempotency-Key" in assert_problem(other, 422)["detail"]
    orders_client.post("/orders", json=body)
    orders_client.post("/orders", json=body, headers={"Idempotency-Key": f"o-{uuid.uuid4()}"})
    assert count(engine, orders, productId=product["id"]) == 3


def test_a_key_belongs_to_its_caller(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=50)
    key = f"shared-{uuid.uuid4()}"
    answers = []
    for subject in ("alice", "bob"):
        token = bearer_of(service_env, subject)
        answers.append(
            stack.order.test_client().post(
                "/orders",
                json={"productId": product["id"], "qty": 1},
                headers={"Idempotency-Key": key, **token},
            )
        )
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].get_json()["id"] != answers[1].get_json()["id"]


def test_a_key_and_body_sent_to_another_resource_are_refused(stack):
    products = stack.product.test_client()
    three, four = (new_product(products, price=10, qty=50) for _ in range(2))
    key = {"Idempotency-Key": f"adjust-{uuid.uuid4()}"}
    body = {"delta": 5, "reason": "restock"}
    first = products.post(f"/products/{three['id']}/stock-adjustments", json=body, headers=key)
    assert first.status_code == 200 and first.get_json()["qty"] == 55
    other = products.post(f"/products/{four['id']}/stock-adjustments", json=body, headers=key)
    assert "Idempotency-Key" in assert_problem(other, 422)["detail"]
    assert products.get(f"/products/{four['id']}").get_json()["qty"] == 50  # not adjusted
    again = products.post(f"/products/{three['id']}/stock-adjustments", json=body, headers=key)
    assert again.get_data() == first.get_data()
    assert products.get(f"/products/{three['id']}").get_json()["qty"] == 55  # once


def test_keys_and_subjects_compare_byte_for_byte(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=50)
    body = {"productId": product["id"], "qty": 1}
    made = set()
    for subject, key in (("alice", "abc"), ("alice", "ABC"), ("Alice", "abc")):
        headers = {"Idempotency-Key": f"{key}-{product['id']}", **bearer_of(service_env, subject)}
        answer = stack.order.test_client().post("/orders", json=body, headers=headers)
        assert answer.status_code == 201, answer.get_data(as_text=True)
        made.add(answer.get_json()["id"])
    assert len(made) == 3  # three keys, three orders (no one's answer replayed to another)


def bearer_of(env: dict, subject: str) -> dict[str, str]:
    from service_kit.config import auth_settings
    from service_kit.http.dev_tokens import every_scope, mint

    return {"Authorization": f"Bearer {mint(auth_settings(env), every_scope(), subject=subject)}"}


def test_a_repeat_after_its_order_took_the_stock_still_gets_its_order(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=2)
    key = {"Idempotency-Key": f"last-{uuid.uuid4()}"}
    body = {"productId": product["id"], "qty": 2}
    first = stack.order.test_client().post("/orders", json=body, headers=key)
    # The stock is gone now (as order-service learns it from product-service).
    stack.product.test_client().put(
        f"/products/{product['id']}",
        json={"name": "x", "price": 10, "qty": 0},
        headers={"If-Match": "*"},
    )
    plain_repeat = stack.order.test_client().post("/orders", json=body)
    assert plain_repeat.status_code in (201, 409)  # the known stock may not have caught up
    again = stack.order.test_client().post("/orders", json=body, headers=key)
    assert again.status_code == 201 and again.get_json() == first.get_json()


@pytest.mark.parametrize("key", ["", "x" * 129, "with space", "é"])
def test_a_malformed_key_is_a_400(stack, key):
    product = new_product(stack.product.test_client(), price=10, qty=5)
    answer = stack.order.test_client().post(
        "/orders", json={"productId": product["id"], "qty": 1}, headers={"Idempotency-Key": key}
    )
    assert_problem(answer, 400)


def test_fifty_concurrent_orders_with_one_key_make_one_order(stack, service_env):
    product = new_product(stack.product.test_client(), price=10, qty=500)
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    body = {"productId": product["id"], "qty": 1}

    def order(_: int):
        return stack.order.test_client().post("/orders", json=body, headers=key)

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(order, range(50)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.get_json()["id"] for a in answers}) == 1
    engine = create_engine_for(service_env["ORDER_DATABASE_URL"])
    assert count(engine, orders, productId=product["id"]) == 1
    assert events_of_order(engine, answers[0].get_json()["id"]) == 1


def test_a_repeated_product_gets_its_first_answer(stack, service_env):
    products = stack.product.test_client()
    key = {"Idempotency-Key": f"product-{uuid.uuid4()}"}
    body = {"name": f"Once {uuid.uuid4()}", "price": 12.5, "qty": 3}
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(
            pool.map(lambda _: products.post("/products", json=body, headers=key), range(10))
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.get_data() for a in answers}) == 1
    assert len({a.headers["Location"] for a in answers}) == 1
    engine = create_engine_for(service_env["PRODUCT_DATABASE_URL"])
    assert count(engine, product_table, name=body["name"]) == 1
    assert_problem(products.post("/products", json={**body, "qty": 4}, headers=key), 422)


class CommitThatFails:
    """The group committer's driver connection, whose commit fails as a lost connection's does:
    after the server committed (the reply lost: injected), or before. On MariaDB the latter is
    real: the connection is killed from another session, then the driver's own commit fails.
    There the COMMIT goes with the batch's last INSERTs in one packet; on SQLite it is the
    driver's `commit()`."""

    def __init__(self, connection, engine, *, after_commit: bool) -> None:  # noqa: ANN001
        self._connection = connection
        self._engine = engine
        self._after_commit = after_commit

    def __getattr__(self, name):  # noqa: ANN001, ANN204 - a proxy
        return getattr(self._connection, name)

    def commit(self) -> None:
        self.fail(self._connection.commit)

    def cursor(self) -> "CursorThatFails":
        return CursorThatFails(self._connection.cursor(), self)

    def fail(self, commit) -> None:  # noqa: ANN001
        lost = self._engine.dialect.loaded_dbapi.OperationalError
        if self._after_commit:
            commit()
            raise lost(2013, "Lost connection to server during query")
        if self._engine.dialect.name == "mysql":
            with self._connection.cursor() as cursor:
                cursor.execute("SELECT CONNECTION_ID()")
                (connection_id,) = cursor.fetchone()
            with self._engine.connect() as admin:
                admin.exec_driver_sql(f"KILL CONNECTION {int(connection_id)}")
            commit()  # the driver's own error
        self._connection.rollback()
        raise lost("the connection was cut before the commit")


class CursorThatFails:
    def __init__(self, cursor, connection: CommitThatFails) -> None:  # noqa: ANN001
        self._cursor = cursor
        self._connection = connection

    def __getattr__(self, name):  # noqa: ANN001, ANN204 - a proxy
        return getattr(self._cursor, name)

    def execute(self, sql, *args):  # noqa: ANN001, ANN201
        if not sql.endswith(";COMMIT"):
            return self._cursor.execute(sql, *args)

        def commit() -> None:
            self._cursor.execute(sql)
            while self._cursor.nextset():
                pass

        return self._connection.fail(commit)


@pytest.mark.parametrize("committed", [True, False], ids=["reply-lost", "cut-before"])
def test_an_unknown_outcome_is_said_and_the_retry_tells_it(database_urls, committed):
    engine = create_engine_for(database_urls["order"])
    new_orders = GroupCommittedOrders(engine, lists=NoLists())
    product_id = 700_000 + uuid.uuid4().int % 100_000
    fields = {
        "productId": product_id,
        "qty": 1,
        "totalPrice": Decimal("10.00"),  # as the use case computes it
        "status": "PENDING",
        "owner": "alice",
    }
    key = IdempotencyKey("alice", f"unknown-{uuid.uuid4()}", "fingerprint")
    new_orders.add(fields)  # the committer's connection is open now
    driver = new_orders._driver  # noqa: SLF001 - the fault is injected into its connection
    driver._connection = CommitThatFails(driver._connection, engine, after_commit=committed)
    with pytest.raises(OutcomeUnknown):
        new_orders.add(fields, key)
    assert count(engine, orders, productId=product_id) == (2 if committed else 1)
    retried = new_orders.add(fields, key)  # a fresh connection: the failed one was dropped
    assert count(engine, orders, productId=product_id) == 2  # made once, either way
    assert exact_json.dumps(new_orders.add(fields, key)) == exact_json.dumps(retried)
    with pytest.raises(KeyReused):
        new_orders.add(fields, IdempotencyKey("alice", key.key, "another body"))


class NoLists:
    def invalidate(self, product_ids) -> None:  # noqa: ANN001
        list(product_ids)


def test_an_expired_order_key_is_forgotten_and_taken_over(database_urls):
    engine = create_engine_for(database_urls["order"])
    owner = f"owner-{uuid.uuid4()}"
    fields = {
        "productId": 1,
        "qty": 1,
        "totalPrice": Decimal("10.00"),
        "status": "PENDING",
        "owner": owner,
    }
    key = IdempotencyKey(owner, "k", "fingerprint")
    new_orders = GroupCommittedOrders(engine, lists=NoLists(), idempotency_ttl_s=1)
    first = new_orders.add(fields, key)
    assert new_orders.add(fields, key) == first == new_orders.answered(key)
    with engine.begin() as connection:  # settled meanwhile: still answered as it was created
        connection.execute(orders.update().where(orders.c.id == first["id"]).values(status="X"))
    assert new_orders.answered(key) == first
    threading.Event().wait(1.1)  # the key's time to live has passed: a new request
    assert new_orders.answered(key) is None
    second = new_orders.add(fields, key)
    assert second["id"] != first["id"]
    assert count(engine, orders, owner=owner) == 2
    assert count(engine, orders, owner=owner, idempotencyKey="k") == 1  # moved to the new one
    assert new_orders.add(fields, key) == second


def test_expired_product_keys_are_forgotten_and_pruned(database_urls):
    engine = create_engine_for(database_urls["product"])
    key = IdempotencyKey(f"scope-{uuid.uuid4()}", "k", "fingerprint")
    with engine.begin() as connection:
        IdempotencyRecords(connection, idempotency_keys, ttl_s=3600).record(key, 201, "{}", None)
    with engine.begin() as connection:
        assert IdempotencyRecords(connection, idempotency_keys, 3600).earlier_answer(key) == "{}"
    threading.Event().wait(1.1)
    with engine.begin() as connection:  # a time to live of 1 s has passed: a new request
        assert IdempotencyRecords(connection, idempotency_keys, 1).earlier_answer(key) is None
    with engine.begin() as connection:
        IdempotencyRecords(connection, idempotency_keys, 3600).record(key, 201, "{}", None)
    threading.Event().wait(1.1)
    assert KeyPruner(engine, idempotency_keys, ttl_s=1).prune_once() >= 1
    assert count(engine, idempotency_keys, scope=key.scope) == 0


def test_an_unknown_outcome_is_a_503_of_its_own_type(stack):
    with stack.order.test_request_context():
        answer = edge.handle_exception(OutcomeUnknown("the database did not answer within 10 s"))
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1
    problem = json.loads(answer.get_data())
    assert problem["type"] == "urn:order-product:problem:outcome-unknown"
    assert "same Idempotency-Key" in problem["detail"]
