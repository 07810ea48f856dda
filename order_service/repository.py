"""Orders in SQL (SQLAlchemy Core). Column names are the contract's field names, so a row is
already the `Order` of openapi/order.yaml."""

from collections.abc import Mapping
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

from service_kit.db import Money, UtcDateTime, utc_now
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

    def add(self, fields: Mapping[str, Any]) -> Order:
        row = {**fields, "createdAt": utc_now()}
        result = self._connection.execute(insert(orders).values(row))
        return {"id": result.inserted_primary_key[0], **row}

    def get(self, order_id: int) -> Order | None:
        row = self._connection.execute(select(orders).where(orders.c.id == order_id)).first()
        return None if row is None else dict(row._mapping)

    def newest_of_product(self, product_id: int, *, before: int | None, limit: int) -> list[Order]:
        query = select(orders).where(orders.c.productId == product_id)
        if before is not None:
            query = query.where(orders.c.id < before)
        query = query.order_by(orders.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def settle(self, order_id: int, status: str, *, from_status: str) -> bool:
        """Move an order on from `from_status`; False when it is elsewhere (or missing)."""
        result = self._connection.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.status == from_status)
            .values(status=status)
        )
        return result.rowcount == 1


class OrderUnitOfWork(SqlUnitOfWork):
    orders: SqlOrderRepository

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine, event_tables)

    def __enter__(self) -> "OrderUnitOfWork":
        super().__enter__()
        self.orders = SqlOrderRepository(self.connection)
        return self
