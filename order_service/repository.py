"""Orders in SQL (SQLAlchemy Core). Column names are the contract's field names, so a row is
already the `Order` of openapi/order.yaml."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from service_kit.db import Money, UtcDateTime, utc_now

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


class SqlOrderRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, fields: Mapping[str, Any]) -> Order:
        row = {**fields, "createdAt": utc_now()}
        with self._engine.begin() as connection:
            result = connection.execute(insert(orders).values(row))
            (order_id,) = result.inserted_primary_key
        return {"id": order_id, **row}

    def get(self, order_id: int) -> Order | None:
        with self._engine.connect() as connection:
            row = connection.execute(select(orders).where(orders.c.id == order_id)).first()
        return None if row is None else dict(row._mapping)

    def newest_of_product(self, product_id: int, *, before: int | None, limit: int) -> list[Order]:
        query = select(orders).where(orders.c.productId == product_id)
        if before is not None:
            query = query.where(orders.c.id < before)
        query = query.order_by(orders.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
