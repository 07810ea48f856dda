"""Products in SQL (SQLAlchemy Core). Column names are the contract's field names, so a row is
already the `Product` of openapi/product.yaml."""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    text,
    update,
)

from service_kit.messaging.unit_of_work import EventTables, SqlUnitOfWork
from service_kit.storage.db import Money, UtcDateTime, utc_now
from service_kit.storage.idempotency import IdempotencyRecords, idempotency_table

Product = dict[str, Any]

metadata = MetaData()
products = Table(
    "products",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("price", Money(10), nullable=False),
    Column("qty", Integer, nullable=False),
    # Grows with every change, the worker's reservations included: ETags and If-Match.
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("createdAt", UtcDateTime(), nullable=False),
    Column("updatedAt", UtcDateTime(), nullable=False),
    mysql_charset="utf8mb4",
)
event_tables = EventTables(metadata)
idempotency_keys = idempotency_table(metadata)


class SqlProductRepository:
    """Queries on the connection of the unit of work in progress."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, fields: Mapping[str, Any]) -> Product:
        now = utc_now()
        result = self._connection.execute(
            insert(products).values({**fields, "version": 1, "createdAt": now, "updatedAt": now})
        )
        return self._select(result.inserted_primary_key[0])

    def get(self, product_id: int) -> Product | None:
        return self._select(product_id)

    def page_after(self, after: int, limit: int) -> list[Product]:
        query = select(products).where(products.c.id > after).order_by(products.c.id).limit(limit)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def replace(
        self, product_id: int, fields: Mapping[str, Any], versions: Collection[int] | None
    ) -> Product | None:
        """The product with these fields, if it exists and is at one of `versions` (None: any);
        None otherwise, nothing written."""
        statement = (
            update(products)
            .where(*self._at(product_id, versions))
            .values({**fields, "version": products.c.version + 1, "updatedAt": utc_now()})
        )
        if self._connection.execute(statement).rowcount == 0:
            return None
        return self._select(product_id)

    def remove(self, product_id: int, versions: Collection[int] | None) -> bool:
        statement = delete(products).where(*self._at(product_id, versions))
        return self._connection.execute(statement).rowcount > 0

    def adjust_stock(self, product_id: int, delta: int) -> Product | None:
        """The product with `delta` added to its stock as it is now, if it exists and the
        stock stays at 0 or above; None otherwise, nothing written."""
        statement = (
            update(products)
            .where(products.c.id == product_id, products.c.qty + delta >= 0)
            .values(qty=products.c.qty + delta, version=products.c.version + 1, updatedAt=utc_now())
        )
        if self._connection.execute(statement).rowcount == 0:
            return None
        return self._select(product_id)

    @staticmethod
    def _at(product_id: int, versions: Collection[int] | None) -> list[Any]:
        where = [products.c.id == product_id]
        if versions is not None:
            where.append(products.c.version.in_(sorted(versions)))
        return where

    def lock_stock(self, product_ids: Iterable[int]) -> dict[int, int]:
        """The stock of these products (those that exist), locked until the transaction ends."""
        query = (
            select(products.c.id, products.c.qty)
            .where(products.c.id.in_(sorted(set(product_ids))))
            .order_by(products.c.id)  # one lock order for everyone: no deadlock
            .with_for_update()
        )
        return {row.id: row.qty for row in self._connection.execute(query)}

    def locked(self, product_ids: Iterable[int]) -> list[Product]:
        """These products (those that exist), locked until the transaction ends."""
        query = (
            select(products)
            .where(products.c.id.in_(sorted(set(product_ids))))
            .order_by(products.c.id)  # one lock order for everyone: no deadlock
            .with_for_update()
        )
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def set_stock(self, changes: Mapping[int, tuple[int, int]]) -> None:
        """{product id: (stock read, new stock)}. The write also checks the stock read is
        still there, so even without row locks (SQLite) no change is ever lost."""
        now = utc_now()
        for product_id, (was, now_qty) in changes.items():
            written = self._connection.execute(
                update(products)
                .where(products.c.id == product_id, products.c.qty == was)
                .values(qty=now_qty, version=products.c.version + 1, updatedAt=now)
            )
            if written.rowcount != 1:
                raise StockChanged(f"the stock of product {product_id} changed meanwhile")

    def _select(self, product_id: int) -> Product | None:
        row = self._connection.execute(select(products).where(products.c.id == product_id)).first()
        return None if row is None else dict(row._mapping)


class StockChanged(Exception):
    """A concurrent write changed a stock this transaction read; it is retried."""


class ProductUnitOfWork(SqlUnitOfWork):
    products: SqlProductRepository
    answers: IdempotencyRecords

    def __init__(self, engine: Engine, idempotency_ttl_s: float = 24 * 3600) -> None:
        super().__init__(engine, event_tables)
        self._idempotency_ttl_s = idempotency_ttl_s

    def __enter__(self) -> "ProductUnitOfWork":
        super().__enter__()
        self.products = SqlProductRepository(self.connection)
        self.answers = IdempotencyRecords(
            self.connection, idempotency_keys, self._idempotency_ttl_s
        )
        return self
