"""Idempotency keys in SQL (product-service's; an order carries its own key): each key's first
answer, stored in the transaction of the change it answers, so that a key is answered only if
its change committed. Keys live `ttl_s` (the
configured time, 24 h by default); the worker prunes older ones (`KeyPruner`)."""

import datetime
import logging
import threading
import time
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    tuple_,
)
from sqlalchemy.exc import IntegrityError

from service_kit.idempotency import AnsweredMeanwhile, IdempotencyKey, KeyReused
from service_kit.storage.db import UtcDateTime, exact_string, utc_now

_log = logging.getLogger(__name__)


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        # Compared byte for byte: `alice` is not `Alice`, nor key `abc` key `ABC`.
        Column("scope", exact_string(255), primary_key=True),
        Column("idempotencyKey", exact_string(128), primary_key=True),
        Column("fingerprint", String(64), nullable=False),
        Column("status", SmallInteger, nullable=False),
        Column("body", Text, nullable=False),  # the answer's JSON, as it was sent
        Column("location", String(255), nullable=True),
        Column("createdAt", UtcDateTime(), nullable=False),
        Index("ix_idempotency_keys_created", "createdAt"),
        mysql_charset="utf8mb4",
    )


def create_idempotency_table(op: Any) -> None:
    """The keys' table, for a service's migration."""
    idempotency_table(MetaData()).create(bind=op.get_bind())


def compare_keys_exactly(op: Any) -> None:
    """For a service's migration: the key columns of a table made before they were compared
    byte for byte (nothing to do but on MariaDB/MySQL)."""
    _collate_keys(op, " COLLATE utf8mb4_bin")


def compare_keys_loosely(op: Any) -> None:
    """The downgrade of `compare_keys_exactly`: the table's default collation again."""
    _collate_keys(op, "")


def _collate_keys(op: Any, collation: str) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return
    op.execute(
        "ALTER TABLE idempotency_keys"
        f" MODIFY scope VARCHAR(255) CHARACTER SET utf8mb4{collation} NOT NULL,"
        f" MODIFY idempotencyKey VARCHAR(128) CHARACTER SET utf8mb4{collation} NOT NULL"
    )


def row_of(key: IdempotencyKey, status: int, body: str, location: str | None) -> dict[str, Any]:
    return {
        "scope": key.scope,
        "idempotencyKey": key.key,
        "fingerprint": key.fingerprint,
        "status": status,
        "body": body,
        "location": location,
        "createdAt": utc_now(),
    }


class IdempotencyRecords:
    """The keys, on the connection of a unit of work."""

    def __init__(self, connection: Connection, table: Table, ttl_s: float) -> None:
        self._connection = connection
        self._table = table
        self._ttl = datetime.timedelta(seconds=ttl_s)

    def drop_expired(self, key: IdempotencyKey) -> None:
        t = self._table
        this = (t.c.scope == key.scope) & (t.c.idempotencyKey == key.key)
        self._connection.execute(delete(t).where(this, t.c.createdAt < utc_now() - self._ttl))

    def earlier_answer(self, key: IdempotencyKey) -> str | None:
        """The body first answered to this key, None if there is none (an expired one is
        dropped); KeyReused if it came with another request. A plain read: concurrent
        requests with one key meet at `record`, where the later one waits for the first."""
        t = self._table
        this = (t.c.scope == key.scope) & (t.c.idempotencyKey == key.key)
        row = self._connection.execute(
            select(t.c.fingerprint, t.c.body, t.c.createdAt).where(this)
        ).first()
        if row is None:
            return None
        if row.createdAt < utc_now() - self._ttl:
            self.drop_expired(key)
            return None
        if row.fingerprint != key.fingerprint:
            raise KeyReused(key)
        return row.body

    def record(self, key: IdempotencyKey, status: int, body: str, location: str | None) -> None:
        """AnsweredMeanwhile if a concurrent request with this key committed first."""
        try:
            self._connection.execute(insert(self._table), row_of(key, status, body, location))
        except IntegrityError:
            raise AnsweredMeanwhile() from None


class KeyPruner:
    """Deletes keys older than their time to live, a chunk per transaction, every `every_s`."""

    def __init__(
        self, engine: Engine, table: Table, *, ttl_s: float, every_s: float = 60, chunk: int = 5000
    ) -> None:
        self._engine = engine
        self._table = table
        self._ttl = datetime.timedelta(seconds=ttl_s)
        self._every_s = every_s
        self._chunk = chunk

    def prune_once(self) -> int:
        t = self._table
        oldest = (
            select(t.c.scope, t.c.idempotencyKey)
            .where(t.c.createdAt < utc_now() - self._ttl)
            .limit(self._chunk)
        )
        deleted = 0
        while True:
            with self._engine.begin() as connection:
                keys = [tuple(row) for row in connection.execute(oldest)]
                if keys:
                    connection.execute(
                        delete(t).where(tuple_(t.c.scope, t.c.idempotencyKey).in_(keys))
                    )
            deleted += len(keys)
            if len(keys) < self._chunk:
                return deleted

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self._every_s):
            started = time.monotonic()
            try:
                if deleted := self.prune_once():
                    _log.info(
                        "pruned %d expired idempotency keys in %.1f s",
                        deleted,
                        time.monotonic() - started,
                    )
            except Exception:  # the database may be away: the next pass tries again
                _log.exception("pruning idempotency keys failed")
