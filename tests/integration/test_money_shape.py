"""Money leaves the services in one shape: a JSON number with exactly two decimals (3000.00),
on every operation, on both request paths (the fast path and Connexion's), from whichever
backend, and in every event. The money fields are found in the specs themselves, so a new one
is covered (or this test fails, naming it)."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from order_service.repository import event_tables as order_tables
from product_service.repository import event_tables as product_tables
from service_kit.messaging import events as events_contract
from service_kit.storage.db import create_engine_for
from tests.integration.stack import build_stack, new_product

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
MONEY_NAMES = {"price", "totalPrice"}
product_outbox, order_outbox = product_tables.outbox, order_tables.outbox
TWO_DECIMALS = re.compile(r"-?\d+\.\d\d")


def money_fields(node: Any, document: dict, seen: frozenset = frozenset()) -> set[str]:
    """The money properties a schema holds, at any depth, following $refs."""
    if isinstance(node, dict):
        if (ref := node.get("$ref")) and ref not in seen:
            target = document
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return money_fields(target, document, seen | {ref})
        found = {
            name
            for name, schema in (node.get("properties") or {}).items()
            if name in MONEY_NAMES and schema.get("type") == "number"
        }
        for value in node.values():
            found |= money_fields(value, document, seen)
        return found
    if isinstance(node, list):
        return set().union(*(money_fields(item, document, seen) for item in node))
    return set()


def operations_with_money() -> set[str]:
    operations = set()
    for name in ("product.yaml", "order.yaml"):
        document = yaml.safe_load((OPENAPI / name).read_text())
        for path in document["paths"].values():
            for operation in path.values():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                answers = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
                if money_fields(answers, document):
                    operations.add(operation["operationId"])
    return operations


def events_with_money() -> set[str]:
    """The event types whose message (asyncapi/events.yaml) carries money."""
    document = events_contract.contract()
    return {
        event_type
        for event_type, message in events_contract.messages().items()
        if money_fields(message["payload"], document)
    }


def money_written_in(text: str) -> list[str]:
    """Each money value as the JSON text has it."""
    names = "|".join(MONEY_NAMES)
    return re.findall(rf'"(?:{names})":\s*([^,}}\]]+)', text)


def test_the_specs_money_fields_are_the_ones_checked_here():
    assert operations_with_money() == {
        "create_product",
        "get_product",
        "list_products",
        "update_product",
        "adjust_stock",
        "get_product_with_orders",
        "create_order",
        "get_order",
        "list_orders_by_product",
    }
    assert events_with_money() >= {"product.created", "product.updated", "order.created"}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast-path", "connexion"])
def test_money_has_two_decimals_on_every_operation_and_event(service_env, fast_path):
    stack = build_stack(service_env, fast_path=fast_path)
    products, orders = stack.product.test_client(), stack.order.test_client()
    outboxes = {"product": product_outbox, "order": order_outbox}
    # The session's databases hold other tests' events too (some written with plain numbers):
    # only those written from here on are this test's.
    before = {
        service: _newest_event(service_env, service, outbox) for service, outbox in outboxes.items()
    }
    product = new_product(products, price=1500, qty=50)
    other = new_product(products, price=19.9, qty=50)
    pid = product["id"]
    texts: dict[str, list[str]] = {}

    def called(operation: str, response: Any) -> None:
        assert response.status_code < 300, (operation, response.get_data(as_text=True))
        texts.setdefault(operation, []).append(response.get_data(as_text=True))

    called("create_product", products.post("/products", json={"name": "n", "price": 2, "qty": 1}))
    called("get_product", products.get(f"/products/{pid}"))
    called("list_products", products.get("/products"))
    etag = products.get(f"/products/{other['id']}").headers["ETag"]
    called(
        "update_product",
        products.put(
            f"/products/{other['id']}",
            json={"name": "o", "price": 7.5, "qty": 40},
            headers={"If-Match": etag},
        ),
    )
    called(
        "adjust_stock",
        products.post(f"/products/{pid}/stock-adjustments", json={"delta": 1, "reason": "r"}),
    )
    created = orders.post("/orders", json={"productId": pid, "qty": 2})
    called("create_order", created)
    called("create_order", orders.post("/orders", json={"productId": other["id"], "qty": 3}))
    called("get_order", orders.get(f"/orders/{created.get_json()['id']}"))
    for _ in range(2):  # a miss of the list cache, then a hit
        called("list_orders_by_product", orders.get(f"/orders/product/{pid}"))
        called("get_product_with_orders", products.get(f"/products/{pid}/with-orders"))
    assert set(texts) == operations_with_money()
    for operation, bodies in texts.items():
        for body in bodies:
            written = money_written_in(body)
            assert written, (operation, body)
            assert all(TWO_DECIMALS.fullmatch(v) for v in written), (operation, written)
    assert '"totalPrice":3000.00' in texts["create_order"][0]
    assert '"totalPrice":22.50' in texts["create_order"][1]  # 7.50 × 3
    assert '"totalPrice":3000.00' in texts["get_order"][0]

    events: dict[str, list[str]] = {}
    for service, outbox in outboxes.items():
        engine = create_engine_for(service_env[f"{service.upper()}_DATABASE_URL"], pool_size=1)
        try:
            with engine.connect() as connection:
                written = select(outbox.c.type, outbox.c.body).where(outbox.c.id > before[service])
                for row in connection.execute(written):
                    events.setdefault(row.type, []).append(row.body)
        finally:
            engine.dispose()
    assert set(events) >= events_with_money()
    for event_type in events_with_money():
        for body in events[event_type]:
            written = money_written_in(body)
            assert written and all(TWO_DECIMALS.fullmatch(v) for v in written), (event_type, body)


def _newest_event(service_env: dict, service: str, outbox: Any) -> int:
    engine = create_engine_for(service_env[f"{service.upper()}_DATABASE_URL"], pool_size=1)
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.max(outbox.c.id))).scalar() or 0
    finally:
        engine.dispose()
