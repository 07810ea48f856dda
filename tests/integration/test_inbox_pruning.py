"""The inbox keeps applied-event ids for the retention, then the pruner deletes them; on both
backends, through the services' own migrations (which index the inbox by time)."""

import datetime
import threading
import uuid

from sqlalchemy import insert, select

from order_service.repository import event_tables
from service_kit.messaging.outbox import InboxPruner
from service_kit.storage.db import create_engine_for, utc_now


def _inbox_rows(engine, ages_h: list[float]) -> str:  # noqa: ANN001
    """Rows processed that many hours ago, with ids of their own (the MariaDB database is
    shared by the session's tests); returns the ids' prefix."""
    prefix, now = uuid.uuid4().hex[:8], utc_now()
    rows = [
        {"eventId": f"{prefix}-{n}", "processedAt": now - datetime.timedelta(hours=age)}
        for n, age in enumerate(ages_h)
    ]
    with engine.begin() as connection:
        connection.execute(insert(event_tables.inbox), rows)
    return prefix


def _left(engine, prefix: str) -> list[int]:  # noqa: ANN001
    inbox = event_tables.inbox
    query = select(inbox.c.eventId).where(inbox.c.eventId.startswith(prefix))
    with engine.connect() as connection:
        return sorted(int(i.rsplit("-", 1)[1]) for i in connection.execute(query).scalars())


def test_rows_older_than_the_retention_are_pruned_in_chunks(database_urls):
    engine = create_engine_for(database_urls["order"])
    prefix = _inbox_rows(engine, [0, 1, 23, 25, 48, 100, 200])  # hours ago
    pruner = InboxPruner(engine, event_tables.inbox, retention_s=24 * 3600, chunk=2)
    assert pruner.prune_once() == 4
    assert _left(engine, prefix) == [0, 1, 2]
    assert pruner.prune_once() == 0
    engine.dispose()


def test_the_first_pass_waits_then_the_pruner_stops_when_asked(database_urls):
    engine = create_engine_for(database_urls["order"])
    prefix = _inbox_rows(engine, [0, 50])
    pruner = InboxPruner(
        engine, event_tables.inbox, retention_s=24 * 3600, first_after_s=0.3, every_s=0.05
    )
    stop = threading.Event()
    worker = threading.Thread(target=pruner.run, args=(stop,))
    worker.start()
    assert _left(engine, prefix) == [0, 1]  # not before first_after_s
    deadline = utc_now() + datetime.timedelta(seconds=5)
    while _left(engine, prefix) != [0] and utc_now() < deadline:
        stop.wait(0.05)
    assert _left(engine, prefix) == [0]
    stop.set()
    worker.join(2)
    assert not worker.is_alive()
    engine.dispose()
