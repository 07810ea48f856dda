"""Database engines chosen by URL (SQLite file by default, MariaDB/MySQL through PyMySQL), and the
column types both services need: exact money and UTC timestamps on every dialect."""

import contextlib
import datetime
import decimal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pymysql.constants import CLIENT
from sqlalchemy import DateTime, Engine, Numeric, String, create_engine, event, text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.types import TypeDecorator, TypeEngine

from service_kit.config import redacted
from service_kit.errors import DependencyUnavailable, OutcomeUnknown
from service_kit.storage.rows import DriverInsert
from service_kit.telemetry import metrics


def create_engine_for(
    url: str, *, pool_size: int = 10, name: str = "default", several_statements: bool = False
) -> Engine:
    """An engine for `url`; its pool's connections in use are the metric of pool `name`.
    `several_statements`: MySQL connections that take several statements in one packet."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url)
        _count_connections_in_use(engine, name)
        return engine
    if "charset" not in parsed.query:
        parsed = parsed.update_query_dict({"charset": "utf8mb4"})
    if several_statements:  # the dialect adds its own flags to this one
        flags = int(parsed.query.get("client_flag", 0)) | CLIENT.MULTI_STATEMENTS
        parsed = parsed.update_query_dict({"client_flag": str(flags)})
    engine = create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=5,
        pool_recycle=1800,
        connect_args={
            "connect_timeout": 3,
            "read_timeout": 10,
            "write_timeout": 10,
            "init_command": QUOTES_ONLY_ESCAPED,
        },
    )
    _ping_when_idle(engine)
    _count_connections_in_use(engine, name)  # after the ping: a stale connection never counts
    return engine


# Strings in SQL escaped by doubling their quotes only: PyMySQL then escapes a value with one
# str.replace instead of a translate through its escape table (0.2 against 6.6 µs for an event's
# JSON), on every session. The dialect reads the mode at its first connection and agrees.
QUOTES_ONLY_ESCAPED = (
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@sql_mode, ''), 'NO_BACKSLASH_ESCAPES')"
)


def _count_connections_in_use(engine: Engine, name: str) -> None:
    in_use = metrics.db_connections_in_use.labels(name)

    @event.listens_for(engine, "checkout")
    def _taken(_dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if not record.info.get("counted"):
            record.info["counted"] = True
            in_use.inc()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record.info.pop("counted", False):
            in_use.dec()


IDLE_BEFORE_PING_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """A connection that sat in the pool for a while is pinged before use, and replaced if the
    server dropped it meanwhile (restart, wait_timeout). SQLAlchemy's `pool_pre_ping` does this
    for every checkout: a round trip per transaction, a tenth of a busy worker's CPU."""

    @event.listens_for(engine, "checkin")
    def _note_return(_dbapi_connection: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get("returned_at")
        if returned_at is None or time.monotonic() - returned_at < IDLE_BEFORE_PING_S:
            return
        try:
            dbapi_connection.ping(reconnect=False)
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc  # the pool reconnects


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # WAL lets readers run while one process writes; several processes share the file.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return engine


def multi_row_insert_ids_are_consecutive(dialect: Dialect, dbapi_connection: Any) -> bool:
    """True when one multi-row INSERT on this connection gets consecutive auto-increment ids
    starting at its `lastrowid`: MySQL/MariaDB with innodb_autoinc_lock_mode 0 or 1 (MariaDB's
    default; the compose file sets it for MySQL 8; Galera needs 2) and an id stride of 1
    (multi-primary clusters set auto_increment_increment higher, per server or session)."""
    if dialect.name not in ("mysql", "mariadb"):
        return False
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("SELECT @@innodb_autoinc_lock_mode, @@session.auto_increment_increment")
        mode, increment = cursor.fetchone()
    finally:
        cursor.close()
    return int(mode) <= 1 and int(increment) == 1


# Statements are gathered into packets of about this many characters; a table's rows go as one
# statement (a batch is at most 500 orders: far below MariaDB's max_allowed_packet, 16 MiB).
PACKET_CHARS = 1 << 20


class DriverTransaction:
    """A transaction on the dedicated connection. `cursor` runs what is read at once (an
    INSERT's ids); `insert_at_commit` keeps the INSERTs whose results nobody reads for the
    commit, which sends them with the COMMIT in one packet of several statements where the
    connection takes them (MySQL/MariaDB through PyMySQL): one round trip for all of them."""

    def __init__(self, cursor: Any, *, together: bool) -> None:
        self.cursor = cursor
        self._together = together
        self._at_commit: list[tuple[DriverInsert, Sequence[Mapping[str, Any]]]] = []

    def insert_at_commit(self, insert: DriverInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self._at_commit.append((insert, rows))

    def send_before_commit(self) -> str | None:
        """Sends what cannot go with the COMMIT; returns the SQL that can (None: COMMIT alone,
        through the driver)."""
        if not self._together:
            for insert, rows in self._at_commit:
                insert.rows(self.cursor, rows)
            return None
        packet: list[str] = []
        size = 0
        for insert, rows in self._at_commit:
            statement = insert.literal_sql(self.cursor, rows)
            if packet and size + len(statement) > PACKET_CHARS:
                self.execute_all(";".join(packet))
                packet, size = [], 0
            packet.append(statement)
            size += len(statement) + 1
        return ";".join([*packet, "COMMIT"])

    def execute_all(self, statements: str) -> None:
        """Several statements in one packet, each one's result read."""
        self.cursor.execute(statements)
        while self.cursor.nextset():  # each statement's result; a failed one raises here
            pass


class DedicatedConnection:
    """One driver connection kept by one long-lived writer (the group committer): no pool
    checkout, pre-ping or SQLAlchemy statement handling per transaction. A transaction that
    fails drops the connection; the next one connects afresh, so an outage heals by itself.
    On MySQL/MariaDB the connection takes several statements in one packet (the client flag
    MULTI_STATEMENTS), which no other connection of the services does: its statements are
    generated from the tables, and every value is escaped by the driver."""

    def __init__(self, engine: Engine) -> None:
        self._together = engine.dialect.name in ("mysql", "mariadb") and (
            engine.dialect.driver == "pymysql"
        )
        self._engine = engine
        if self._together:
            url = engine.url.render_as_string(hide_password=False)
            self._engine = create_engine_for(
                url, pool_size=1, name="group-commit", several_statements=True
            )
        self._connection: Any = None
        dbapi = self._engine.dialect.loaded_dbapi
        self._lost = (
            dbapi.OperationalError,
            dbapi.InterfaceError,
            OperationalError,
            InterfaceError,
        )
        # Learnt on each new connection: after a fail-over it may reach another server.
        self.consecutive_ids = False

    @contextlib.contextmanager
    def transaction(self) -> Iterator[DriverTransaction]:
        """A transaction, committed when the block ends. A database lost before the commit is
        DependencyUnavailable (503: nothing was stored); one lost during the commit is
        OutcomeUnknown (it may have committed)."""
        try:
            if self._connection is None:
                self._connection = self._engine.raw_connection()
                self.consecutive_ids = multi_row_insert_ids_are_consecutive(
                    self._engine.dialect, self._connection
                )
            cursor = self._connection.cursor()
        except BaseException as exc:
            self._fail(exc, None, committing=False)
        try:
            transaction = DriverTransaction(cursor, together=self._together)
            yield transaction
            with_commit = transaction.send_before_commit()
        except BaseException as exc:
            self._fail(exc, cursor, committing=False)
        try:
            if with_commit is None:
                self._connection.commit()
            else:
                transaction.execute_all(with_commit)
        except BaseException as exc:
            self._fail(exc, cursor, committing=True)
        with contextlib.suppress(Exception):  # committed: nothing may say otherwise now
            cursor.close()

    def _fail(self, exc: BaseException, cursor: Any, *, committing: bool) -> NoReturn:
        """Raises what the writer's caller gets for `exc`, having dropped the connection (its
        cursor closed first: SQLite keeps a connection's lock while a statement is open)."""
        if cursor is not None:
            with contextlib.suppress(Exception):
                cursor.close()
        self._drop()
        if isinstance(exc, self._lost):
            if committing and not _refused_by_the_server(exc):
                raise OutcomeUnknown(
                    f"the database connection failed during the commit: {exc}"
                ) from exc
            raise DependencyUnavailable("the database is unreachable; retry later") from exc
        raise exc

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.invalidate()
            self._connection = None


def _refused_by_the_server(exc: BaseException) -> bool:
    """True for an error the MySQL server answered (numbered below 2000: a deadlock, a lock wait
    timeout), after which nothing of the packet was committed; the client's own errors, a lost
    connection among them, are numbered 2000-2999, and a commit they interrupt may have run."""
    code = exc.args[0] if exc.args else None
    return isinstance(code, int) and 1000 <= code < 2000


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def unreachable_reason(exc: DBAPIError) -> str:
    """The driver's own words, without SQLAlchemy's statement and background link."""
    return str(exc.orig) if exc.orig is not None else str(exc).splitlines()[0]


def exit_unless_reachable(url: str, who: str) -> None:
    """At a process's start: a database that cannot be reached (refused, unknown host or
    database, bad password) is one line naming it (password hidden) and why, then exit status
    1, instead of a traceback per attempt. What starts the process again (make run's
    supervisor, the orchestrator) retries, with its own back-off."""
    engine = create_engine_for(url, pool_size=1, name="start-up")
    try:
        ping(engine)
    except DBAPIError as exc:
        print(
            f"{who}: database {redacted(url)} unreachable: {unreachable_reason(exc)}",
            file=sys.stderr,
        )
        raise SystemExit(1) from None
    finally:
        engine.dispose()


CENT = decimal.Decimal("0.01")


class Money(TypeDecorator[decimal.Decimal]):
    """DECIMAL(precision, 2) where the database has exact decimals; text on SQLite, whose NUMERIC
    would round through binary floating point."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int = 12) -> None:
        super().__init__()
        self.precision = precision

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))
        return dialect.type_descriptor(Numeric(self.precision, 2, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        cents = decimal.Decimal(value).quantize(CENT)
        return str(cents) if dialect.name == "sqlite" else cents

    def process_result_value(self, value: Any, dialect: Dialect) -> decimal.Decimal | None:
        # Always two decimals, as written: rows stored as "3000.0" (a float once bound on
        # SQLite) read back the same as "3000.00".
        return None if value is None else decimal.Decimal(value).quantize(CENT)


class UtcDateTime(TypeDecorator[datetime.datetime]):
    """Stored as naive UTC with microseconds, read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        naive = value.astimezone(datetime.UTC).replace(tzinfo=None)
        # MySQL takes the time as text, which PyMySQL quotes with one str.replace (its own
        # datetime formatting costs ten times more, and the inbox writes one per event).
        return naive.isoformat(" ") if dialect.name in ("mysql", "mariadb") else naive

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime.datetime | None:
        return None if value is None else value.replace(tzinfo=datetime.UTC)


def exact_string(length: int) -> TypeEngine[str]:
    """A VARCHAR compared byte for byte everywhere: MariaDB's default utf8mb4 collation takes
    `ABC` for `abc` and `é` for `e`; SQLite compares bytes already."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
    )


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
