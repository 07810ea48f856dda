"""The inbox records each event once, on both backends, through the services' own migrations:
repeats within a batch, ids recorded before, and an id another consumer is recording at the
same moment (the second waits for the first's outcome)."""

import concurrent.futures
import time

import pytest

from order_service.repository import event_tables
from service_kit.messaging.events import new_event
from service_kit.messaging.outbox import first_time
from service_kit.storage.db import create_engine_for


def _events(count: int) -> list:
    return [new_event("order.created", {"n": n}) for n in range(count)]


@pytest.fixture
def engine(database_urls):
    engine = create_engine_for(database_urls["order"])
    yield engine
    engine.dispose()


def _ids(events) -> list[str]:  # noqa: ANN001
    return [event.id for event in events]


@pytest.mark.parametrize("returning", [True, False], ids=["one-insert", "select-then-insert"])
def test_each_event_is_recorded_once(engine, returning, monkeypatch):
    if not returning:  # as on a database without INSERT ... RETURNING (MySQL)
        monkeypatch.setattr(engine.dialect, "insert_returning", False)
    a, b, c = _events(3)
    with engine.begin() as connection:
        assert _ids(first_time(connection, event_tables.inbox, [a, b, a])) == _ids([a, b])
    with engine.begin() as connection:
        assert _ids(first_time(connection, event_tables.inbox, [b, c, a, c])) == _ids([c])
    with engine.begin() as connection:
        assert first_time(connection, event_tables.inbox, [a, b, c]) == []


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_an_id_being_recorded_elsewhere_waits_for_that_outcome(engine, outcome):
    a, b = _events(2)
    with engine.connect() as first, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first.begin()
        assert _ids(first_time(first, event_tables.inbox, [a])) == _ids([a])

        def second_consumer() -> list[str]:
            with engine.begin() as second:
                return _ids(first_time(second, event_tables.inbox, [a, b]))

        recorded = pool.submit(second_consumer)
        time.sleep(0.3)
        assert not recorded.done()  # waiting for the first transaction, not guessing
        getattr(first, outcome)()
        expected = [b] if outcome == "commit" else [a, b]
        assert recorded.result(timeout=10) == _ids(expected)
