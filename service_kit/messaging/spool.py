"""The embedded broker: a durable spool in one SQLite file that every process of both services
opens (default `sqlite:///var/events.db`). Same semantics as the RabbitMQ set-up: topic
routing to the queues of asyncapi/events.yaml, redelivery of what is not acked (also after a crash:
a received message is invisible for a while, then comes back), dead-letter queues after
MAX_DELIVERIES."""

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import make_url

from service_kit.messaging import events
from service_kit.messaging.broker import BrokerUnavailable, Delivery, OutgoingMessage

_INVISIBLE_S = 30.0  # a consumer that died holding messages gives them back after this
_POLL_S = 0.02

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    routing_key TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body BLOB NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS spool_by_queue ON spool (queue, visible_at, id);
"""


class SpoolBroker:
    def __init__(self, url: str) -> None:
        path = make_url(url).database
        if not path:
            raise BrokerUnavailable(f"{url!r} names no spool file")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        rows = [
            (queue, m.routing_key, m.message_id, m.body)
            for m in messages
            for queue in events.queues_for(m.routing_key)
        ]
        with self._transaction():
            self._db.executemany(
                "INSERT INTO spool (queue, routing_key, message_id, body) VALUES (?, ?, ?, ?)",
                rows,
            )

    def receive(self, queue: str, max_events: int, wait_s: float) -> list[Delivery]:
        """One event per delivery: the spool keeps each message as it was published."""
        deadline = time.monotonic() + wait_s
        while True:
            now = time.time()
            with self._transaction():
                rows = self._db.execute(
                    "SELECT id, routing_key, body, deliveries FROM spool"
                    " WHERE queue = ? AND visible_at <= ? ORDER BY id LIMIT ?",
                    (queue, now, max_events),
                ).fetchall()
                self._db.executemany(
                    "UPDATE spool SET deliveries = deliveries + 1, visible_at = ? WHERE id = ?",
                    [(now + _INVISIBLE_S, row[0]) for row in rows],
                )
            if rows or time.monotonic() >= deadline:
                return [
                    Delivery(body, routing_key, tag, redelivered=deliveries > 0)
                    for tag, routing_key, body, deliveries in rows
                ]
            time.sleep(_POLL_S)

    def settle(
        self, acked: Sequence[Delivery], retried: Sequence[Delivery], dead: Sequence[Delivery]
    ) -> None:
        with self._transaction():
            self._db.executemany("DELETE FROM spool WHERE id = ?", [(d.tag,) for d in acked])
            for delivery in retried:
                self._db.execute(
                    "UPDATE spool SET visible_at = 0,"
                    " queue = CASE WHEN deliveries >= ? THEN queue || '.dead-letter' ELSE queue END"
                    " WHERE id = ?",
                    (events.MAX_DELIVERIES, delivery.tag),
                )
            self._db.executemany(
                "UPDATE spool SET visible_at = 0, queue = queue || '.dead-letter' WHERE id = ?",
                [(d.tag,) for d in dead],
            )

    def depth(self, queue: str) -> int | None:
        try:
            return self._db.execute(
                "SELECT COUNT(*) FROM spool WHERE queue = ?", (queue,)
            ).fetchone()[0]
        except sqlite3.Error as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def ping(self) -> None:
        with self._transaction():
            self._db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> "_Transaction":
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, with SQLite errors reported as BrokerUnavailable."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise BrokerUnavailable(repr(exc)) from exc

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as error:
            raise BrokerUnavailable(repr(error)) from error
        if isinstance(exc, sqlite3.Error):
            raise BrokerUnavailable(repr(exc)) from exc
