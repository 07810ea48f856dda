"""Orders in SQL: SQLAlchemy Core, and for the group commit of new orders a driver connection of
its own, with the statements generated from the same tables. Column names are the contract's
field names, so a row is already the `Order` of order.yaml."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

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
    select,
    update,
)

from service_kit import request_id
from service_kit.messaging import outbox
from service_kit.messaging.events import new_event
from service_kit.messaging.unit_of_work import EventTables, SqlUnitOfWork
from service_kit.storage.db import (
    DedicatedConnection,
    Money,
    UtcDateTime,
    multi_row_insert_ids_are_consecutive,
    utc_now,
)
from service_kit.storage.group_commit import GroupCommit
from service_kit.storage.rows import DriverInsert

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
NEW_ORDER_COLUMNS = ("productId", "qty", "totalPrice", "status", "createdAt")


class OrderListInvalidation(Protocol):
    def invalidate(self, product_ids: Iterable[int]) -> None: ...


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


class GroupCommittedOrders:
    """New orders, each stored with its order.created event in one transaction that it shares
    with the other orders of this process arriving meanwhile (group commit): one commit, one
    multi-row INSERT per table where the database allows, for a whole batch. Once a batch is
    committed, the cached order lists of its products are invalidated."""

    def __init__(
        self, engine: Engine, lists: OrderListInvalidation, *, linger_s: float = 0.0
    ) -> None:
        self._engine = engine
        self._lists = lists
        self._driver = DedicatedConnection(engine)
        self._insert_orders = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
        self._insert_events = DriverInsert(event_tables.outbox, outbox.COLUMNS, engine.dialect)
        self._consecutive_ids: bool | None = None  # learnt at the first commit
        self._group: GroupCommit[tuple[Mapping[str, Any], str | None], Order] = GroupCommit(
            self._commit, after_commit=self._invalidate_lists, linger_s=linger_s
        )

    def add(self, fields: Mapping[str, Any]) -> Order:
        return self._group.submit((fields, request_id.current()))

    def _commit(self, items: Sequence[tuple[Mapping[str, Any], str | None]]) -> list[Order]:
        if self._consecutive_ids is None:
            self._consecutive_ids = multi_row_insert_ids_are_consecutive(self._engine)
        now = utc_now()
        rows = [{**fields, "createdAt": now} for fields, _ in items]
        with self._driver.transaction() as cursor:
            ids = self._insert_orders.rows_with_ids(
                cursor, rows, consecutive_ids=self._consecutive_ids
            )
            created = [{"id": order_id, **row} for order_id, row in zip(ids, rows, strict=True)]
            events = [
                new_event("order.created", order, caused_by=caused_by)
                for order, (_, caused_by) in zip(created, items, strict=True)
            ]
            self._insert_events.rows(cursor, [outbox.row_of(event) for event in events])
        return created

    def _invalidate_lists(self, created: Sequence[Order]) -> None:
        self._lists.invalidate(order["productId"] for order in created)
