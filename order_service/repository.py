"""Orders in SQL: SQLAlchemy Core, and the driver directly for the group commit of new orders.
Column names are the contract's field names, so a row is already the `Order` of order.yaml."""

import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    update,
)

from service_kit import outbox, request_id
from service_kit.db import (
    DedicatedConnection,
    Money,
    UtcDateTime,
    multi_row_insert_ids_are_consecutive,
    utc_now,
)
from service_kit.events import Event, new_event
from service_kit.group_commit import GroupCommit
from service_kit.unit_of_work import EventTables, SqlUnitOfWork

Order = dict[str, Any]

# SQLite only auto-increments an INTEGER PRIMARY KEY.
OrderId = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", OrderId, primary_key=True, autoincrement=True),
    Column("productId", Integer, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("totalPrice", Money(18), nullable=False),
    Column("status", String(16), nullable=False),
    Column("createdAt", UtcDateTime(), nullable=False),
    Index("ix_orders_product_newest", "productId", "id"),
    mysql_charset="utf8mb4",
)
event_tables = EventTables(metadata)


class SqlOrderRepository:
    """Queries on the connection of the unit of work in progress."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, order_id: int) -> Order | None:
        row = self._connection.execute(select(orders).where(orders.c.id == order_id)).first()
        return None if row is None else dict(row._mapping)

    def newest_of_product(self, product_id: int, *, before: int | None, limit: int) -> list[Order]:
        query = select(orders).where(orders.c.productId == product_id)
        if before is not None:
            query = query.where(orders.c.id < before)
        query = query.order_by(orders.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def settle(self, order_ids: Sequence[int], status: str, *, from_status: str) -> None:
        """Move these orders on from `from_status` (orders elsewhere, or missing, stay)."""
        self._connection.execute(
            update(orders)
            .where(orders.c.id.in_(order_ids), orders.c.status == from_status)
            .values(status=status)
        )


class OrderUnitOfWork(SqlUnitOfWork):
    orders: SqlOrderRepository

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, event_tables)

    def __enter__(self) -> "OrderUnitOfWork":
        super().__enter__()
        self.orders = SqlOrderRepository(self.connection)
        return self


_MYSQL_INSERT_ORDER = (
    "INSERT INTO orders (productId, qty, totalPrice, status, createdAt) VALUES (%s, %s, %s, %s, %s)"
)


class GroupCommittedOrders:
    """New orders, each stored with its order.created event in one transaction that it shares
    with the other orders of this process arriving meanwhile (group commit): one commit, one
    multi-row INSERT per table, for a whole batch."""

    def __init__(
        self,
        engine: Engine,
        *,
        after_commit: Callable[[Sequence[Order]], None],
        linger_s: float = 0.0,
    ) -> None:
        self._engine = engine
        self._driver = DedicatedConnection(engine)
        self._through_driver: bool | None = None  # learnt at the first commit
        self._group: GroupCommit[tuple[Mapping[str, Any], str | None], Order] = GroupCommit(
            self._commit, after_commit=after_commit, linger_s=linger_s
        )

    def add(self, fields: Mapping[str, Any]) -> Order:
        return self._group.submit((fields, request_id.current()))

    def _commit(self, items: Sequence[tuple[Mapping[str, Any], str | None]]) -> list[Order]:
        now = utc_now()
        rows = [{**fields, "createdAt": now} for fields, _ in items]
        causes = [caused_by for _, caused_by in items]
        if self._through_driver is None:
            self._through_driver = multi_row_insert_ids_are_consecutive(self._engine)
        if self._through_driver:
            return self._commit_through_driver(rows, causes)
        with self._engine.begin() as connection:
            created = []
            for row in rows:
                order_id = connection.execute(insert(orders).values(row)).inserted_primary_key[0]
                created.append({"id": order_id, **row})
            outbox.append(connection, event_tables.outbox, *_orders_created(created, causes))
        return created

    def _commit_through_driver(
        self, rows: list[dict[str, Any]], causes: list[str | None]
    ) -> list[Order]:
        """MySQL/MariaDB, the hot path: PyMySQL turns each executemany into one multi-row
        INSERT, whose ids are consecutive from `lastrowid`."""
        # What Money and UtcDateTime would bind: exact cents, naive UTC.
        created_at = rows[0]["createdAt"].astimezone(datetime.UTC).replace(tzinfo=None)
        with self._driver.transaction() as cursor:
            cursor.executemany(
                _MYSQL_INSERT_ORDER,
                [
                    (r["productId"], r["qty"], r["totalPrice"], r["status"], created_at)
                    for r in rows
                ],
            )
            first = cursor.lastrowid
            created = [{"id": first + n, **row} for n, row in enumerate(rows)]
            outbox.append_through_driver(cursor, _orders_created(created, causes))
        return created


def _orders_created(created: Sequence[Order], causes: Sequence[str | None]) -> list[Event]:
    return [
        new_event("order.created", order, caused_by=caused_by)
        for order, caused_by in zip(created, causes, strict=True)
    ]
