"""Transactional outbox and inbox, the same tables in both services' databases.

- `outbox`: events written in the same transaction as the state change they announce; the relay
  publishes them in id order, in batches, and deletes them once the broker holds them.
- `relay_lease`: which relay publishes the outbox now. Every worker runs a relay; the one that
  holds the lease publishes, the others stand by and take over once it lapses, so each event
  is published once and in id order however many workers run (`RelayLease`).
- `inbox`: ids of the events a service has applied, written in the same transaction as their
  effect, so a redelivered event changes nothing. Rows older than the retention are pruned
  (`InboxPruner`), or the table would grow with every event without end."""

import datetime
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Insert,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Dialect

from service_kit.messaging.broker import (
    Backoff,
    Broker,
    BrokerUnavailable,
    Outage,
    OutgoingMessage,
    close_quietly,
)
from service_kit.messaging.events import EXCHANGE, TRACE_CONTEXT, Event
from service_kit.messaging.hold_back import HoldBack
from service_kit.storage.db import UtcDateTime, utc_now
from service_kit.telemetry import metrics, tracing

_log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
        Column("eventId", String(36), nullable=False),
        Column("type", String(64), nullable=False),
        Column("body", Text, nullable=False),
        mysql_charset="utf8mb4",
    )


def inbox_table(metadata: MetaData) -> Table:
    # Migration 0003 of each service indexes processedAt, for the pruner.
    return Table(
        "inbox",
        metadata,
        Column("eventId", String(36), primary_key=True),
        Column("processedAt", UtcDateTime(), nullable=False),
        mysql_charset="utf8mb4",
    )


def relay_lease_table(metadata: MetaData) -> Table:
    return Table(
        "relay_lease",
        metadata,
        Column("name", String(64), primary_key=True),
        Column("holder", String(128), nullable=False),
        # Milliseconds since the epoch on the holder's clock: hosts are NTP-synchronised, and
        # their skew is far below the lease's length.
        Column("expiresAtMs", BigInteger, nullable=False),
        mysql_charset="utf8mb4",
    )


OUTBOX_LEASE = "outbox"


def create_relay_lease_table(op: Any) -> None:
    """The relay's lease, for a service's migration: one row, held by nobody."""
    table = relay_lease_table(MetaData())
    table.create(bind=op.get_bind())
    op.bulk_insert(table, [{"name": OUTBOX_LEASE, "holder": "", "expiresAtMs": 0}])


def create_event_tables(op: Any) -> None:
    """The outbox and inbox tables, for a service's migration."""
    metadata = MetaData()
    for table in (outbox_table(metadata), inbox_table(metadata)):
        table.create(bind=op.get_bind())


def index_inbox_by_time(op: Any) -> None:
    """The index the inbox pruner deletes by, for a service's migration."""
    op.create_index("ix_inbox_processedAt", "inbox", ["processedAt"])


COLUMNS = ("eventId", "type", "body")  # what a new outbox row is given


def row_of(event: Event) -> dict[str, str]:
    """The outbox row of an event."""
    return {"eventId": event.id, "type": event.type, "body": event.to_json()}


def append(connection: Connection, outbox: Table, *events: Event) -> None:
    connection.execute(insert(outbox), [row_of(event) for event in events])


def first_time(connection: Connection, inbox: Table, events: Sequence[Event]) -> list[Event]:
    """The events of a batch not applied before, each once, now recorded as applied. Where the
    database returns what an INSERT stored (MariaDB 10.5+, SQLite 3.35+), one INSERT that skips
    the ids already there: an id a concurrent consumer is recording waits for that commit and
    is skipped once it stands. Else one SELECT and one INSERT, which fails on such an id, so
    the batch is retried and then sees it as applied."""
    unique = list({event.id: event for event in events}.values())
    if not unique:
        return []
    now = utc_now()
    rows = [{"eventId": event.id, "processedAt": now} for event in unique]
    skipping = _insert_skipping_recorded(inbox, connection.dialect)
    if skipping is not None:
        stored = set(connection.execute(skipping.returning(inbox.c.eventId), rows).scalars())
        return [event for event in unique if event.id in stored]
    seen = set(
        connection.execute(
            select(inbox.c.eventId).where(inbox.c.eventId.in_([e.id for e in unique]))
        ).scalars()
    )
    fresh = [row for row in rows if row["eventId"] not in seen]
    if fresh:
        connection.execute(insert(inbox), fresh)
    return [event for event in unique if event.id not in seen]


def _insert_skipping_recorded(inbox: Table, dialect: Dialect) -> Insert | None:
    """An INSERT into the inbox that skips ids already recorded, where its RETURNING is
    supported. (MariaDB's IGNORE would also let a bad value through as a warning; the envelope's
    contract makes every id a UUID, so only a duplicate is skipped.)"""
    if not dialect.insert_returning:
        return None
    if dialect.name == "sqlite":
        return sqlite.insert(inbox).on_conflict_do_nothing()
    if dialect.name in ("mysql", "mariadb"):
        return insert(inbox).prefix_with("IGNORE")
    return None


# Rows per broker transaction: a bigger batch drains a backlog faster (docs/performance.md).
RELAY_BATCH_SIZE = 2000
# A relay that dies unannounced is replaced this long after its last renewal.
RELAY_LEASE_S = 10.0


class RelayLease:
    """The right to publish one service's outbox, held by one relay at a time: a row the holder
    renews every third of the lease, and a stand-by may take once it has lapsed. One UPDATE
    both takes and renews it, so two relays cannot both succeed."""

    def __init__(self, engine: Engine, table: Table, *, length_s: float = RELAY_LEASE_S) -> None:
        self._engine = engine
        self._table = table
        self._length_s = length_s
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"[:128]
        self._renew_at = 0.0  # monotonic: when to renew; 0 when not held

    def held(self) -> bool:
        """Whether this relay may publish now: renews the lease when due, or tries to take it."""
        if self._renew_at and time.monotonic() < self._renew_at:
            return True
        renewed_at = time.monotonic()
        now_ms = int(time.time() * 1000)
        lease = self._table.c
        with self._engine.begin() as connection:
            taken = connection.execute(
                update(self._table)
                .where(lease.name == OUTBOX_LEASE)
                .where((lease.holder == self.holder) | (lease.expiresAtMs < now_ms))
                .values(holder=self.holder, expiresAtMs=now_ms + int(self._length_s * 1000))
            ).rowcount
        was_held = bool(self._renew_at)
        self._renew_at = renewed_at + self._length_s / 3 if taken else 0.0
        if taken and not was_held:
            _log.info("relay: this worker (%s) publishes the outbox", self.holder)
        elif was_held and not taken:
            _log.warning("relay: the lease passed to another worker; standing by")
        metrics.relay_lease_held.set(1 if taken else 0)
        return bool(taken)

    def release(self) -> None:
        """Hands the lease back at once (a stand-by takes it on its next try)."""
        if not self._renew_at:
            return
        self._renew_at = 0.0
        metrics.relay_lease_held.set(0)
        lease = self._table.c
        with self._engine.begin() as connection:
            connection.execute(
                update(self._table)
                .where(lease.name == OUTBOX_LEASE)
                .where(lease.holder == self.holder)
                .values(expiresAtMs=0)
            )


class OutboxRelay:
    """Publishes the outbox to the broker, oldest first, a batch per broker transaction, while
    it holds the lease."""

    def __init__(
        self,
        engine: Engine,
        outbox: Table,
        lease: RelayLease,
        connect: Callable[[], Broker],
        *,
        batch_size: int = RELAY_BATCH_SIZE,
        idle_wait_s: float = 0.2,  # between polls of an empty outbox; bigger batches after
        standby_wait_s: float = 1.0,  # between a stand-by's tries to take the lease
        hold_back: HoldBack | None = None,  # each batch waits its turn on a busy machine
    ) -> None:
        self._engine = engine
        self._outbox = outbox
        self._lease = lease
        self._connect = connect
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._standby_wait_s = standby_wait_s
        self._hold_back = hold_back

    def relay_once(self, broker: Broker) -> int:
        query = select(self._outbox).order_by(self._outbox.c.id).limit(self._batch_size)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        if not rows:
            return 0
        spans = _publish_spans(rows)
        broker.publish([OutgoingMessage(row.type, row.body.encode(), row.eventId) for row in rows])
        for span in spans:
            span.end()
        metrics.count_each(metrics.events_relayed, (row.type for row in rows))
        # A crash before this delete republishes the batch: consumers de-duplicate by event id.
        with self._engine.begin() as connection:
            connection.execute(
                delete(self._outbox).where(self._outbox.c.id.in_([r.id for r in rows]))
            )
        return len(rows)

    def run(self, stop: threading.Event) -> None:
        broker: Broker | None = None
        backoff = Backoff()
        outage = Outage("relay", _log)
        self._tell_hold_back(caught_up=False)  # until a round says otherwise
        while not stop.is_set():
            try:
                if not self._lease.held():
                    self._tell_hold_back(caught_up=True)  # a stand-by has nothing to work off
                    broker = close_quietly(broker)
                    stop.wait(self._standby_wait_s)
                    continue
                broker = broker or self._connect()
                if self._hold_back is not None:
                    self._hold_back.wait_turn(stop, self._keep_alive(broker))
                    if stop.is_set() or not self._lease.held():  # a stand-by may have it now
                        continue
                sent = self.relay_once(broker)
                backoff.reset()
                outage.recovered()
                self._tell_hold_back(caught_up=sent < self._batch_size)
                if sent < self._batch_size:
                    stop.wait(self._idle_wait_s)
            except (BrokerUnavailable, OSError) as exc:
                outage.failed(exc, backoff)
                broker = close_quietly(broker)
                stop.wait(backoff.next())
            except Exception:
                _log.exception("relay: failed; retrying in %.1fs", backoff.delay)
                stop.wait(backoff.next())
        close_quietly(broker)
        try:
            self._lease.release()
        except Exception as exc:  # it lapses by itself
            _log.warning("relay: lease not released (%s); it lapses in %.0fs", exc, RELAY_LEASE_S)

    def _tell_hold_back(self, *, caught_up: bool) -> None:
        if self._hold_back is not None:
            self._hold_back.tell("outbox-relay", caught_up=caught_up)

    def _keep_alive(self, broker: Broker) -> Callable[[], None]:
        """While held back: the broker's heartbeats, and the lease renewed when due."""

        def keep_alive() -> None:
            broker.ping()
            self._lease.held()

        return keep_alive


def _publish_spans(rows: Sequence[Any]) -> list[Any]:
    """When spans are recorded: a producer span for each event, in the trace of the work that
    caused it (the event's envelope says which)."""
    if not tracing.recording():
        return []
    spans = []
    for row in rows:
        envelope = json.loads(row.body)
        carrier = {key: envelope[key] for key in TRACE_CONTEXT if key in envelope}
        spans.append(
            tracing.start_span(
                f"publish {row.type}",
                carrier,
                tracing.SpanKind.PRODUCER,
                **{"messaging.destination.name": EXCHANGE, "messaging.message.id": row.eventId},
            )
        )
    return spans


class OutboxBacklog:
    """The outbox's backlog, read when scraped: its rows, and the age of the oldest event (a
    relay that stalls shows as an age that grows)."""

    def __init__(self, engine: Engine, outbox: Table) -> None:
        self._engine = engine
        self._outbox = outbox

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(select(func.count()).select_from(self._outbox)).scalar()
                oldest = connection.execute(
                    select(self._outbox.c.body).order_by(self._outbox.c.id).limit(1)
                ).scalar()
        except Exception as exc:  # a scrape without these beats a failed scrape
            _log.warning("outbox backlog unknown: %s", exc)
            return
        yield GaugeMetricFamily("outbox_backlog_rows", "Events in the outbox", value=rows or 0)
        age = 0.0
        if oldest is not None:
            occurred = datetime.datetime.fromisoformat(json.loads(oldest)["occurredAt"])
            age = max((utc_now() - occurred).total_seconds(), 0.0)
        yield GaugeMetricFamily(
            "outbox_oldest_event_age_seconds",
            "Age of the oldest event not yet relayed (0: none waiting)",
            value=age,
        )


class InboxPruner:
    """Deletes inbox rows older than `retention_s`, a chunk per transaction, every `every_s`.
    The first pass waits `first_after_s` after start: events that were applied but not acked
    before a long worker outage come back when it restarts, and must still find their rows."""

    def __init__(
        self,
        engine: Engine,
        inbox: Table,
        *,
        retention_s: float,
        first_after_s: float = 600,
        every_s: float = 60,
        chunk: int = 5000,
    ) -> None:
        self._engine = engine
        self._inbox = inbox
        self._retention = datetime.timedelta(seconds=retention_s)
        self._first_after_s = first_after_s
        self._every_s = every_s
        self._chunk = chunk

    def prune_once(self) -> int:
        """How many rows were deleted."""
        cutoff = utc_now() - self._retention
        oldest = (
            select(self._inbox.c.eventId)
            .where(self._inbox.c.processedAt < cutoff)
            .limit(self._chunk)
        )
        deleted = 0
        while True:
            with self._engine.begin() as connection:
                ids = connection.execute(oldest).scalars().all()
                if ids:
                    connection.execute(delete(self._inbox).where(self._inbox.c.eventId.in_(ids)))
            deleted += len(ids)
            if len(ids) < self._chunk:
                return deleted

    def run(self, stop: threading.Event) -> None:
        if stop.wait(self._first_after_s):
            return
        while True:
            try:
                if deleted := self.prune_once():
                    _log.info("inbox: %d rows older than %s pruned", deleted, self._retention)
            except Exception:
                _log.exception("inbox: pruning failed; trying again in %.0fs", self._every_s)
            if stop.wait(self._every_s):
                return
