"""Orders in SQL: SQLAlchemy Core, and for the group commit of new orders a driver connection of
its own, with the statements generated from the same tables. Column names are the contract's
field names, so a row is already the `Order` of order.yaml."""

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

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

from service_kit import exact_json, request_id
from service_kit.idempotency import IdempotencyKey, KeyReused
from service_kit.messaging import outbox
from service_kit.messaging.events import new_event
from service_kit.messaging.unit_of_work import EventTables, SqlUnitOfWork
from service_kit.storage.db import (
    DedicatedConnection,
    Money,
    UtcDateTime,
    exact_string,
    utc_now,
)
from service_kit.storage.group_commit import GroupCommit
from service_kit.storage.idempotency import (
    BatchKeys,
    IdempotencyRecords,
    idempotency_table,
    row_of,
)
from service_kit.storage.rows import DriverInsert
from service_kit.telemetry import metrics, tracing
from service_kit.telemetry.tracing import Carrier

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
    # Who placed it (the token's subject); NULL for orders from before owners were recorded,
    # which only the back office sees. Not part of the contract's Order.
    Column("owner", exact_string(255), nullable=True),  # `Alice` is not `alice`
    Index("ix_orders_product_newest", "productId", "id"),
    Index("ix_orders_owner_product_newest", "owner", "productId", "id"),
    mysql_charset="utf8mb4",
)
event_tables = EventTables(metadata)
idempotency_keys = idempotency_table(metadata)
NEW_ORDER_COLUMNS = ("productId", "qty", "totalPrice", "status", "createdAt", "owner")
# What an order is in the contract (order.yaml's Order, order.created's data).
CONTRACT_COLUMNS = [column for column in orders.c if column.name != "owner"]


class _NewOrder(NamedTuple):
    fields: Mapping[str, Any]
    caused_by: str | None  # the request id
    trace: Carrier  # the request's trace context
    idempotency: IdempotencyKey | None


class OrderListInvalidation(Protocol):
    def invalidate(self, product_ids: Iterable[int]) -> None: ...


class SqlOrderRepository:
    """Queries on the connection of the unit of work in progress."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def get(self, order_id: int, *, owner: str | None) -> Order | None:
        query = select(*CONTRACT_COLUMNS).where(orders.c.id == order_id)
        if owner is not None:
            query = query.where(orders.c.owner == owner)
        row = self._connection.execute(query).first()
        return None if row is None else dict(row._mapping)

    def newest_of_product(
        self, product_id: int, *, owner: str | None, before: int | None, limit: int
    ) -> list[Order]:
        query = select(*CONTRACT_COLUMNS).where(orders.c.productId == product_id)
        if owner is not None:
            query = query.where(orders.c.owner == owner)
        if before is not None:
            query = query.where(orders.c.id < before)
        query = query.order_by(orders.c.id.desc()).limit(limit)
        return [dict(row._mapping) for row in self._connection.execute(query)]

    def settle(self, order_ids: Sequence[int], status: str, *, from_status: str) -> int:
        """Move these orders on from `from_status` (orders elsewhere, or missing, stay); how
        many moved."""
        return self._connection.execute(
            update(orders)
            .where(orders.c.id.in_(order_ids), orders.c.status == from_status)
            .values(status=status)
        ).rowcount


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
    committed, the cached order lists of its products are invalidated.

    An order sent with an Idempotency-Key is stored with the key's answer, in the same
    transaction (repeats within the batch get their first's answer). A key answered before
    makes that INSERT fail (after waiting for the other commit, if it is not in yet): the batch
    is then committed again, having asked which of its keys have an answer, and those requests
    get their first answer instead of a new order. A repeat is rare, so a batch asks only then."""

    def __init__(
        self,
        engine: Engine,
        lists: OrderListInvalidation,
        *,
        interval_s: float = 0.0,
        idempotency_ttl_s: float = 24 * 3600,
    ) -> None:
        self._engine = engine
        self._lists = lists
        self._idempotency_ttl_s = idempotency_ttl_s
        self._driver = DedicatedConnection(engine)
        self._insert_orders = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
        self._insert_events = DriverInsert(event_tables.outbox, outbox.COLUMNS, engine.dialect)
        self._keys = BatchKeys(idempotency_keys, engine.dialect, idempotency_ttl_s)
        self._conflict = engine.dialect.loaded_dbapi.IntegrityError
        self._group: GroupCommit[_NewOrder, Order] = GroupCommit(
            self._commit, name="orders", after_commit=self._invalidate_lists, interval_s=interval_s
        )

    def add(self, fields: Mapping[str, Any], idempotency: IdempotencyKey | None = None) -> Order:
        return self._group.submit(
            _NewOrder(fields, request_id.current(), tracing.current(), idempotency)
        )

    def answered(self, idempotency: IdempotencyKey) -> Order | None:
        with self._engine.begin() as connection:
            records = IdempotencyRecords(connection, idempotency_keys, self._idempotency_ttl_s)
            body = records.earlier_answer(idempotency)
        return None if body is None else exact_json.loads(body)

    def _commit(self, items: Sequence[_NewOrder]) -> list[Order | BaseException]:
        try:
            return self._commit_once(items, look_up_keys=False)
        except self._conflict:
            # A key answered before, maybe by another process a moment ago (the INSERT waited
            # for that commit), or an expired one not pruned yet.
            self._drop_expired_keys([item.idempotency for item in items if item.idempotency])
            return self._commit_once(items, look_up_keys=True)

    def _commit_once(
        self, items: Sequence[_NewOrder], *, look_up_keys: bool
    ) -> list[Order | BaseException]:
        now = utc_now()
        results: list[Order | BaseException | None] = [None] * len(items)
        owners: dict[tuple[str, str], int] = {}  # a key → the item of this batch that stores it
        new: list[int] = []
        with self._driver.transaction() as transaction:
            cursor = transaction.cursor
            keys = [item.idempotency for item in items if item.idempotency]
            earlier = self._keys.earlier_answers(cursor, keys) if keys and look_up_keys else {}
            for index, item in enumerate(items):
                key = item.idempotency
                if key is None:
                    new.append(index)
                elif (key.scope, key.key) in earlier:
                    fingerprint, body = earlier[(key.scope, key.key)]
                    same = fingerprint == key.fingerprint
                    results[index] = exact_json.loads(body) if same else KeyReused(key)
                elif (key.scope, key.key) not in owners:
                    owners[(key.scope, key.key)] = index
                    new.append(index)
            # No owner given: an order only the back office sees.
            rows = [{"owner": None, **items[index].fields, "createdAt": now} for index in new]
            if rows:
                ids = self._insert_orders.rows_with_ids(
                    cursor, rows, consecutive_ids=self._driver.consecutive_ids
                )
                for index, order_id, row in zip(new, ids, rows, strict=True):
                    # The contract's order: who placed it stays in the database.
                    order = {"id": order_id, **row}
                    del order["owner"]
                    results[index] = order
                events = [
                    new_event(
                        "order.created",
                        results[index],
                        caused_by=items[index].caused_by,
                        trace=items[index].trace,
                    )
                    for index in new
                ]
                transaction.insert_at_commit(
                    self._insert_events, [outbox.row_of(event) for event in events]
                )
            if owners:
                answers = [
                    row_of(
                        items[index].idempotency,
                        201,
                        exact_json.dumps(results[index]),
                        f"/orders/{results[index]['id']}",
                    )
                    for index in owners.values()
                ]
                self._keys.record(transaction, answers)
        metrics.orders_created.inc(len(new))  # committed
        for index, item in enumerate(items):  # repeats within the batch: their first's answer
            if results[index] is None:
                first = owners[(item.idempotency.scope, item.idempotency.key)]
                same = items[first].idempotency.fingerprint == item.idempotency.fingerprint
                results[index] = results[first] if same else KeyReused(item.idempotency)
        return results

    def _drop_expired_keys(self, keys: Sequence[IdempotencyKey]) -> None:
        with self._engine.begin() as connection:
            records = IdempotencyRecords(connection, idempotency_keys, self._idempotency_ttl_s)
            for key in keys:
                records.drop_expired(key)

    def _invalidate_lists(self, results: Sequence[Order | BaseException]) -> None:
        self._lists.invalidate(
            result["productId"] for result in results if not isinstance(result, BaseException)
        )
