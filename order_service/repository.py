"""Orders in SQL: SQLAlchemy Core, and for the group commit of new orders a driver connection of
its own, with the statements generated from the same tables. Column names are the contract's
field names, so a row is already the `Order` of order.yaml."""

import datetime
import functools
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
    bindparam,
    select,
    update,
)

from order_service.service import PENDING
from service_kit import request_id
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
from service_kit.storage.rows import DriverInsert, DriverSelect
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
    # The Idempotency-Key the owner sent it with, and that request's fingerprint (the key's
    # answer is this order); neither is part of the contract's Order.
    Column("idempotencyKey", exact_string(128), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Index("ix_orders_product_newest", "productId", "id"),
    Index("ix_orders_owner_product_newest", "owner", "productId", "id"),
    Index("ux_orders_owner_key", "owner", "idempotencyKey", unique=True),
    mysql_charset="utf8mb4",
)
event_tables = EventTables(metadata)
NEW_ORDER_COLUMNS = (
    "productId",
    "qty",
    "totalPrice",
    "status",
    "createdAt",
    "owner",
    "idempotencyKey",
    "fingerprint",
)
# What an order is in the contract (order.yaml's Order, order.created's data).
CONTRACT_COLUMNS = [
    column for column in orders.c if column.name not in ("owner", "idempotencyKey", "fingerprint")
]


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

    An order sent with an Idempotency-Key carries the key and its request's fingerprint on its
    own row, unique per owner (the key's scope): the key's answer is the order as it was created
    (its status then, PENDING; only the status changes later). Repeats within a batch get their
    first's answer. A key answered before makes the orders' INSERT fail (after waiting for the
    other commit, if it is not in yet): the batch is then committed again, having asked which of
    its keys have an order, and those requests get that order instead of a new one. A repeat is
    rare, so a batch asks only then. A key older than `idempotency_ttl_s` is forgotten: it
    answers nothing, and a new order with it takes it over."""

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
        self._idempotency_ttl = datetime.timedelta(seconds=idempotency_ttl_s)
        self._driver = DedicatedConnection(engine)
        self._insert_orders = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
        self._insert_events = DriverInsert(event_tables.outbox, outbox.COLUMNS, engine.dialect)
        self._bind_time = orders.c.createdAt.type.bind_processor(engine.dialect)
        self._conflict = engine.dialect.loaded_dbapi.IntegrityError
        self._group: GroupCommit[_NewOrder, Order] = GroupCommit(
            self._commit, name="orders", after_commit=self._invalidate_lists, interval_s=interval_s
        )

    def add(self, fields: Mapping[str, Any], idempotency: IdempotencyKey | None = None) -> Order:
        if idempotency is not None and idempotency.scope != fields.get("owner"):
            raise ValueError("an order's key belongs to the order's owner")
        return self._group.submit(
            _NewOrder(fields, request_id.current(), tracing.current(), idempotency)
        )

    def answered(self, idempotency: IdempotencyKey) -> Order | None:
        query = select(*CONTRACT_COLUMNS, orders.c.fingerprint).where(
            orders.c.owner == idempotency.scope,
            orders.c.idempotencyKey == idempotency.key,
            orders.c.createdAt >= utc_now() - self._idempotency_ttl,
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        if row.fingerprint != idempotency.fingerprint:
            raise KeyReused(idempotency)
        return _as_answered({column.name: row._mapping[column.name] for column in CONTRACT_COLUMNS})

    def _commit(self, items: Sequence[_NewOrder]) -> list[Order | BaseException]:
        """The batch committed; after a conflict on a key (answered before, maybe by another
        process a moment ago: the INSERT waited for that commit; or expired, still on its
        order), again with its keys looked up, expired ones forgotten first."""
        keys = [item.idempotency for item in items if item.idempotency]
        attempts = 0
        while True:
            now = utc_now()  # one cutoff for what is forgotten and what is looked up
            if attempts:
                self._forget_expired_keys(keys, now)
            try:
                return self._commit_once(items, look_up_keys=attempts > 0, now=now)
            except self._conflict:
                # Once more only if another process stored a key between look-up and INSERT.
                attempts += 1
                if attempts == _ATTEMPTS:
                    raise

    def _commit_once(
        self, items: Sequence[_NewOrder], *, look_up_keys: bool, now: datetime.datetime
    ) -> list[Order | BaseException]:
        results: list[Order | BaseException | None] = [None] * len(items)
        owners: dict[tuple[str, str], int] = {}  # a key → the item of this batch that stores it
        new: list[int] = []
        with self._driver.transaction() as transaction:
            cursor = transaction.cursor
            keys = [item.idempotency for item in items if item.idempotency]
            earlier = self._earlier_orders(cursor, keys, now) if keys and look_up_keys else {}
            for index, item in enumerate(items):
                key = item.idempotency
                if key is None:
                    new.append(index)
                elif (key.scope, key.key) in earlier:
                    fingerprint, order = earlier[(key.scope, key.key)]
                    results[index] = order if fingerprint == key.fingerprint else KeyReused(key)
                elif (key.scope, key.key) not in owners:
                    owners[(key.scope, key.key)] = index
                    new.append(index)
            rows = [_row_of(items[index], now) for index in new]
            if rows:
                ids = self._insert_orders.rows_with_ids(
                    cursor, rows, consecutive_ids=self._driver.consecutive_ids
                )
                for index, order_id, row in zip(new, ids, rows, strict=True):
                    order = {"id": order_id, **row}
                    results[index] = {
                        column.name: order[column.name] for column in CONTRACT_COLUMNS
                    }
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
        metrics.orders_created.inc(len(new))  # committed
        for index, item in enumerate(items):  # repeats within the batch: their first's answer
            if results[index] is None:
                first = owners[(item.idempotency.scope, item.idempotency.key)]
                same = items[first].idempotency.fingerprint == item.idempotency.fingerprint
                results[index] = results[first] if same else KeyReused(item.idempotency)
        return results

    def _earlier_orders(
        self, cursor: Any, keys: Sequence[IdempotencyKey], now: datetime.datetime
    ) -> dict[tuple[str, str], tuple[str, Order]]:
        """(owner, key) → (fingerprint, the order as answered) of the keys on unexpired orders."""
        found = {}
        for owner, names in _by_owner(keys).items():
            values = {"owner": owner, "cutoff": self._bind_time(now - self._idempotency_ttl)}
            values |= {f"k{n}": name for n, name in enumerate(names)}
            for row in self._keyed_orders(len(names)).rows(cursor, values):
                name, fingerprint = row.pop("idempotencyKey"), row.pop("fingerprint")
                found[(owner, name)] = (fingerprint, _as_answered(row))
        return found

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one instance per process, a few sizes
    def _keyed_orders(self, count: int) -> DriverSelect:
        query = select(*CONTRACT_COLUMNS, orders.c.idempotencyKey, orders.c.fingerprint).where(
            orders.c.owner == bindparam("owner"),
            orders.c.idempotencyKey.in_([bindparam(f"k{n}") for n in range(count)]),
            orders.c.createdAt >= bindparam("cutoff"),
        )
        return DriverSelect(query, self._engine.dialect)

    def _forget_expired_keys(self, keys: Sequence[IdempotencyKey], now: datetime.datetime) -> None:
        """Expired keys taken off their orders, so that new orders can carry them."""
        with self._engine.begin() as connection:
            for owner, names in _by_owner(keys).items():
                connection.execute(
                    update(orders)
                    .where(
                        orders.c.owner == owner,
                        orders.c.idempotencyKey.in_(names),
                        orders.c.createdAt < now - self._idempotency_ttl,
                    )
                    .values(idempotencyKey=None, fingerprint=None)
                )

    def _invalidate_lists(self, results: Sequence[Order | BaseException]) -> None:
        self._lists.invalidate(
            result["productId"] for result in results if not isinstance(result, BaseException)
        )


# A batch's commits before it fails: the first, then two with its keys looked up (a second
# look-up is needed only when another process stored one of its keys in the moment between).
_ATTEMPTS = 3


def _row_of(item: _NewOrder, now: datetime.datetime) -> dict[str, Any]:
    key = item.idempotency
    return {
        "owner": None,  # no owner given: an order only the back office sees
        **item.fields,
        "createdAt": now,
        "idempotencyKey": None if key is None else key.key,
        "fingerprint": None if key is None else key.fingerprint,
    }


def _by_owner(keys: Sequence[IdempotencyKey]) -> dict[str, list[str]]:
    by_owner: dict[str, list[str]] = {}
    for key in keys:
        by_owner.setdefault(key.scope, []).append(key.key)
    return by_owner


def _as_answered(order: Order) -> Order:
    """A key's answer: its order as it was created, before its status moved on."""
    return order | {"status": PENDING}
