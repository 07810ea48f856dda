"""Products in SQL (SQLAlchemy Core). Column names are the contract's field names, so a row is
already the `Product` of openapi/product.yaml."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from service_kit.db import Money, UtcDateTime, utc_now

Product = dict[str, Any]

metadata = MetaData()
products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("price", Money(10), nullable=False),
    Column("qty", Integer, nullable=False),
    Column("createdAt", UtcDateTime(), nullable=False),
    Column("updatedAt", UtcDateTime(), nullable=False),
    mysql_charset="utf8mb4",
)


class SqlProductRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, fields: Mapping[str, Any]) -> Product:
        now = utc_now()
        row = {**fields, "createdAt": now, "updatedAt": now}
        with self._engine.begin() as connection:
            result = connection.execute(insert(products).values(row))
            (product_id,) = result.inserted_primary_key
            return self._select(connection, product_id)

    def get(self, product_id: int) -> Product | None:
        with self._engine.connect() as connection:
            return self._select(connection, product_id)

    def page_after(self, after: int, limit: int) -> list[Product]:
        query = select(products).where(products.c.id > after).order_by(products.c.id).limit(limit)
        with self._engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def replace(self, product_id: int, fields: Mapping[str, Any]) -> Product | None:
        statement = (
            update(products)
            .where(products.c.id == product_id)
            .values({**fields, "updatedAt": utc_now()})
        )
        with self._engine.begin() as connection:
            if connection.execute(statement).rowcount == 0:
                return None
            return self._select(connection, product_id)

    def remove(self, product_id: int) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(delete(products).where(products.c.id == product_id))
            return result.rowcount > 0

    @staticmethod
    def _select(connection: Any, product_id: int) -> Product | None:
        row = connection.execute(select(products).where(products.c.id == product_id)).first()
        return None if row is None else dict(row._mapping)
