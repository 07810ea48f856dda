"""The database adapters against the real MariaDB: connections that the server dropped are
replaced by themselves; group commit hands out the ids the server gave."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pymysql
from sqlalchemy import event, select, text

from order_service.repository import GroupCommittedOrders, orders
from service_kit.storage import db
from tests.integration.test_idempotency import NoLists


def _kill(connection_id: int) -> None:
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"KILL CONNECTION {int(connection_id)}")
    admin.close()


def test_an_idle_pooled_connection_the_server_dropped_is_replaced(mysql_databases, monkeypatch):
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_S", 0.0)  # every returned connection counts as idle
    engine = db.create_engine_for(mysql_databases["order"], pool_size=1)
    with engine.connect() as connection:
        first = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    _kill(first)
    with engine.connect() as connection:  # no error: the ping found it dead, the pool reconnected
        second = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    assert second != first
    engine.dispose()


def test_group_commit_returns_the_stored_ids_under_any_id_stride(mysql_databases):
    """A multi-primary cluster hands out ids with a stride (auto_increment_increment = 7 here,
    on every session of the engine): the committer must not compute ids as lastrowid + n."""
    engine = db.create_engine_for(mysql_databases["order"], pool_size=2)

    @event.listens_for(engine, "connect")
    def stride_of_seven(dbapi_connection, _record) -> None:  # noqa: ANN001
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION auto_increment_increment = 7")

    new_orders = GroupCommittedOrders(engine, lists=NoLists(), interval_s=0.05)
    product_id = 800_000 + uuid.uuid4().int % 100_000
    with ThreadPoolExecutor(20) as pool:  # together, so that they share multi-row INSERTs
        made = list(
            pool.map(
                lambda qty: new_orders.add(
                    {"productId": product_id, "qty": qty, "totalPrice": qty, "status": "PENDING"}
                ),
                range(1, 21),
            )
        )
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                select(orders.c.id, orders.c.qty).where(orders.c.productId == product_id)
            ).all()
        )
    assert {order["id"]: order["qty"] for order in made} == stored
    ids = sorted(stored)
    assert all((b - a) % 7 == 0 for a, b in zip(ids, ids[1:], strict=False))
    engine.dispose()
