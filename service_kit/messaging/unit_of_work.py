"""One database transaction in which a use case changes state, emits the events that announce
it (outbox) and records the events it has applied (inbox): all commit together or not at all."""

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Connection, Engine, MetaData, Table
from sqlalchemy.exc import InterfaceError, OperationalError

from service_kit.errors import OutcomeUnknown
from service_kit.messaging import outbox
from service_kit.messaging.events import Event, new_event


class EventTables:
    """The outbox, inbox and relay lease tables of one service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox: Table = outbox.outbox_table(metadata)
        self.inbox: Table = outbox.inbox_table(metadata)
        self.relay_lease: Table = outbox.relay_lease_table(metadata)


class SqlUnitOfWork:
    def __init__(self, engine: Engine, tables: EventTables) -> None:
        self._engine = engine
        self._tables = tables
        self.connection: Connection

    def __enter__(self) -> Self:
        self.connection = self._engine.connect()
        self._transaction = self.connection.begin()
        self._emitted: list[Event] = []
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                if self._emitted:  # one multi-row INSERT for every event of the transaction
                    outbox.append(self.connection, self._tables.outbox, *self._emitted)
                try:
                    self._transaction.commit()
                except (OperationalError, InterfaceError) as exc:
                    raise OutcomeUnknown(
                        f"the database connection failed during the commit: {exc.orig}"
                    ) from exc
            else:
                self._transaction.rollback()
        finally:
            self.connection.close()

    def emit(self, event_type: str, data: dict[str, Any]) -> Event:
        """Announce a change: the event is stored in the outbox with this transaction."""
        event = new_event(event_type, data)
        self._emitted.append(event)
        return event

    def first_time(self, events: Sequence[Event]) -> list[Event]:
        """The events not applied before (each once), recorded as applied by this transaction."""
        return outbox.first_time(self.connection, self._tables.inbox, events)
