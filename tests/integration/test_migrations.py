"""`python -m <service>.migrate --check`: what a new pod waits on while its rollout's migration
Job runs (infra/k8s), on SQLite and MariaDB."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, Table, delete, func, insert, inspect, select, text

from devstack import throwaway
from order_service.repository import orders
from product_service.repository import products
from service_kit.storage.db import create_engine_for
from service_kit.storage.idempotency import idempotency_table
from service_kit.storage.migrations import migrate_main

ORDERS = "order_service:migrations"
PRODUCTS = "product_service:migrations"


def test_check_says_whether_the_schema_is_at_the_newest_revision(database_urls):
    url = database_urls["order"]  # migrated to the newest revision by the fixture
    migrate_main(ORDERS, url, ["--check"])
    engine = create_engine_for(url, pool_size=1)
    with engine.begin() as connection:
        (before,) = connection.execute(text("SELECT version_num FROM alembic_version")).one()
        connection.execute(text("UPDATE alembic_version SET version_num = '0004'"))
    try:
        with pytest.raises(SystemExit) as refused:
            migrate_main(ORDERS, url, ["--check"])
        assert refused.value.code == 1
        with pytest.raises(SystemExit) as gave_up:  # a new pod's wait, with its deadline
            migrate_main(ORDERS, url, ["--wait", "0"])
        assert gave_up.value.code == 1
    finally:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": before})
        engine.dispose()
    migrate_main(ORDERS, url, ["--check"])
    migrate_main(ORDERS, url, ["--wait", "5"])  # there already: returns at once
    with pytest.raises(SystemExit, match="usage"):
        migrate_main(ORDERS, url, ["--frobnicate"])


def config_of(script_location: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["database_url"] = url
    return config


PRODUCT = {
    "name": "p",
    "price": Decimal("1.50"),
    "qty": 1,
    "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
    "updatedAt": datetime(2026, 1, 1, tzinfo=UTC),
}
ORDER = {
    "productId": 1,
    "qty": 1,
    "totalPrice": Decimal("1.50"),
    "status": "PENDING",
    "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
}


def create_delete_create(url: str, table: Table, row: dict) -> tuple[int, int]:
    engine = create_engine_for(url, pool_size=1)
    try:
        with engine.begin() as connection:
            first = connection.execute(insert(table).values(row)).inserted_primary_key[0]
            connection.execute(delete(table).where(table.c.id == first))
        with engine.begin() as connection:
            second = connection.execute(insert(table).values(row)).inserted_primary_key[0]
        return first, second
    finally:
        engine.dispose()


def test_an_id_is_never_handed_out_twice(database_urls):
    """The newest product or order deleted, the next one still gets a new id (SQLite reused
    the largest rowid of a table without AUTOINCREMENT)."""
    for service, table, row in (("product", products, PRODUCT), ("order", orders, ORDER)):
        first, second = create_delete_create(database_urls[service], table, row)
        assert second > first, service


def test_the_autoincrement_migration_keeps_rows_and_indexes(tmp_path):
    for location, table, row, before in (
        (PRODUCTS, products, PRODUCT, "0006"),
        (ORDERS, orders, ORDER, "0005"),
    ):
        url = f"sqlite:///{tmp_path}/{table.name}.db"
        command.upgrade(config_of(location, url), before)
        engine = create_engine_for(url, pool_size=1)
        try:
            with engine.begin() as connection:
                for _ in range(3):
                    connection.execute(insert(table).values(row))
            command.upgrade(config_of(location, url), "head")
            with engine.begin() as connection:
                assert [r.id for r in connection.execute(select(table.c.id))] == [1, 2, 3]
                (sql,) = connection.execute(
                    text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table.name}
                ).one()
                assert "AUTOINCREMENT" in sql
                indexes = {i["name"] for i in inspect(connection).get_indexes(table.name)}
                assert indexes == {i.name for i in table.indexes}
            first, second = create_delete_create(url, table, row)
            assert (first, second) == (4, 5)
            command.downgrade(config_of(location, url), before)  # and back, rows kept
            with engine.begin() as connection:
                assert connection.execute(select(func.count()).select_from(table)).scalar() == 4
        finally:
            engine.dispose()


@pytest.fixture
def empty_order_database(backend: str, request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """A database of order-service with no revision yet."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path}/orders.db"
        return
    request.getfixturevalue("mysql_databases")  # the server is there (or the test is skipped)
    admin, name = throwaway.mysql_admin(), f"test_migration_{uuid.uuid4().hex[:8]}"
    try:
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield f"{throwaway.mysql_server_url()}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


def test_order_keys_move_onto_their_orders(empty_order_database):
    url = empty_order_database
    command.upgrade(config_of(ORDERS, url), "0007")
    keys = idempotency_table(MetaData())
    key_row = {
        "fingerprint": "f" * 64,
        "status": 201,
        "body": "{}",
        "createdAt": datetime(2026, 1, 1, tzinfo=UTC),
    }
    engine = create_engine_for(url, pool_size=1)
    try:
        with engine.begin() as connection:
            alices = connection.execute(insert(orders).values({**ORDER, "owner": "alice"}))
            alices = alices.inserted_primary_key[0]
            older = connection.execute(insert(orders).values(ORDER)).inserted_primary_key[0]
            connection.execute(
                insert(keys),
                [
                    {**key_row, "scope": "alice", "idempotencyKey": "k1"}
                    | {"location": f"/orders/{alices}"},
                    # bob's key naming alice's order: not his, it stays off
                    {**key_row, "scope": "bob", "idempotencyKey": "k2"}
                    | {"location": f"/orders/{alices}"},
                    # carol's order from before owners were recorded: hers now
                    {**key_row, "scope": "carol", "idempotencyKey": "k3"}
                    | {"location": f"/orders/{older}"},
                ],
            )
        command.upgrade(config_of(ORDERS, url), "head")
        with engine.begin() as connection:
            found = connection.execute(
                select(orders.c.id, orders.c.owner, orders.c.idempotencyKey, orders.c.fingerprint)
            ).all()
            assert {tuple(row) for row in found} == {
                (alices, "alice", "k1", "f" * 64),
                (older, "carol", "k3", "f" * 64),
            }
            # kept for the pods of the release before, still serving during the rollout
            assert "idempotency_keys" in inspect(connection).get_table_names()
        command.downgrade(config_of(ORDERS, url), "0007")
        with engine.begin() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("orders")}
            assert "idempotencyKey" not in columns and "owner" in columns
    finally:
        engine.dispose()
