"""The database adapters against the real MariaDB: connections that the server dropped are
replaced by themselves; group commit hands out the ids the server gave."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
import sqlalchemy.exc
from sqlalchemy import event, func, select, text
from sqlalchemy.pool import Pool

from order_service.repository import NEW_ORDER_COLUMNS, GroupCommittedOrders, orders
from service_kit.errors import DependencyUnavailable, OutcomeUnknown
from service_kit.storage import db
from service_kit.storage.rows import DriverInsert
from tests.integration.test_idempotency import NoLists


def _kill(connection_id: int) -> None:
    admin = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"KILL CONNECTION {int(connection_id)}")
    admin.close()


def test_an_idle_pooled_connection_the_server_dropped_is_replaced(mysql_databases, monkeypatch):
    monkeypatch.setattr(db, "IDLE_BEFORE_PING_S", 0.0)  # every returned connection counts as idle
    engine = db.create_engine_for(mysql_databases["order"], pool_size=1)
    with engine.connect() as connection:
        first = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    _kill(first)
    with engine.connect() as connection:  # no error: the ping found it dead, the pool reconnected
        second = connection.execute(text("SELECT CONNECTION_ID()")).scalar()
    assert second != first
    engine.dispose()


def test_group_commit_returns_the_stored_ids_under_any_id_stride(mysql_databases):
    """A multi-primary cluster hands out ids with a stride (auto_increment_increment = 7 here,
    on every new session, as a server setting does): the committer must not compute ids as
    lastrowid + n."""

    def stride_of_seven(dbapi_connection, _record) -> None:  # noqa: ANN001
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET SESSION auto_increment_increment = 7")

    event.listen(Pool, "connect", stride_of_seven)  # every engine's, the committer's own too
    try:
        _stored_ids_under_a_stride(mysql_databases["order"])
    finally:
        event.remove(Pool, "connect", stride_of_seven)


def _stored_ids_under_a_stride(url: str) -> None:
    engine = db.create_engine_for(url, pool_size=2)
    new_orders = GroupCommittedOrders(engine, lists=NoLists(), interval_s=0.05)
    product_id = 800_000 + uuid.uuid4().int % 100_000
    with ThreadPoolExecutor(20) as pool:  # together, so that they share multi-row INSERTs
        made = list(
            pool.map(
                lambda qty: new_orders.add(
                    {"productId": product_id, "qty": qty, "totalPrice": qty, "status": "PENDING"}
                ),
                range(1, 21),
            )
        )
    with engine.connect() as connection:
        stored = dict(
            connection.execute(
                select(orders.c.id, orders.c.qty).where(orders.c.productId == product_id)
            ).all()
        )
    assert {order["id"]: order["qty"] for order in made} == stored
    ids = sorted(stored)
    assert all((b - a) % 7 == 0 for a, b in zip(ids, ids[1:], strict=False))
    engine.dispose()


NO_KEY = {"idempotencyKey": None, "fingerprint": None}  # an order sent without Idempotency-Key


def test_the_committer_sends_its_last_inserts_with_the_commit_and_only_it_may(
    mysql_databases, monkeypatch
):
    """The committer's connection takes several statements in one packet (split below a packet
    size), and a statement that fails there leaves nothing of the transaction; the services'
    other connections refuse a second statement."""
    engine = db.create_engine_for(mysql_databases["order"])
    writer = db.DedicatedConnection(engine)
    insert = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
    product_id = 600_000 + uuid.uuid4().int % 100_000
    fields = {"productId": product_id, "qty": 1, "totalPrice": 1, "status": "PENDING"}
    keyless = {"idempotencyKey": None, "fingerprint": None}
    rows = [{**fields, **keyless, "owner": f"o-{n}", "createdAt": db.utc_now()} for n in range(50)]
    monkeypatch.setattr(db, "PACKET_CHARS", 1000)  # a packet per few statements
    packets: list[str] = []
    send = db.DriverTransaction.execute_all

    def noted(transaction: db.DriverTransaction, statements: str) -> None:
        packets.append(statements)
        send(transaction, statements)

    monkeypatch.setattr(db.DriverTransaction, "execute_all", noted)
    with writer.transaction() as transaction:
        for n in range(0, 50, 5):
            transaction.insert_at_commit(insert, rows[n : n + 5])
    assert _count_of(engine, product_id) == 50
    assert len(packets) > 2 and packets[-1].endswith(";COMMIT")
    assert sum(packet.count("INSERT") for packet in packets) == 10
    assert all(len(packet) < 1000 + len(packets[0]) for packet in packets)
    with pytest.raises(pymysql.err.DataError), writer.transaction() as transaction:
        transaction.insert_at_commit(insert, rows[:5])
        transaction.insert_at_commit(insert, [{**rows[0], "owner": "x" * 256}])  # too long
    assert _count_of(engine, product_id) == 50
    with pytest.raises(sqlalchemy.exc.ProgrammingError), engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1; SELECT 2")
    engine.dispose()


def _count_of(engine, product_id: int) -> int:  # noqa: ANN001
    query = select(func.count()).where(orders.c.productId == product_id)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def test_an_error_the_server_answers_in_the_commit_packet_is_no_unknown_outcome(
    mysql_databases, monkeypatch
):
    """A deadlock reported for a statement of the packet holding the COMMIT stops the packet
    there: nothing was committed, so the caller may say so (503, retry) rather than `unknown`;
    a connection lost during that packet stays an unknown outcome."""
    engine = db.create_engine_for(mysql_databases["order"])
    writer = db.DedicatedConnection(engine)
    insert = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
    row = {"productId": 1, "qty": 1, "totalPrice": 1, "status": "PENDING", "owner": "o"}
    row |= NO_KEY | {"createdAt": db.utc_now()}
    for error, expected in [
        (pymysql.err.OperationalError(1213, "Deadlock found"), DependencyUnavailable),
        (pymysql.err.OperationalError(2013, "Lost connection"), OutcomeUnknown),
    ]:

        def fails(_transaction: db.DriverTransaction, statements: str, error=error) -> None:
            assert statements.endswith(";COMMIT")
            raise error

        monkeypatch.setattr(db.DriverTransaction, "execute_all", fails)
        with pytest.raises(expected), writer.transaction() as transaction:
            transaction.insert_at_commit(insert, [row])
    engine.dispose()


AWKWARD_TEXTS = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "\\'; DROP TABLE orders; --",
    "nul\x00",
    "eof\x1a",
    "\\\\'\\",
]


def test_strings_are_escaped_by_doubling_quotes_and_stored_as_sent(mysql_databases):
    """Every session escapes strings by doubling quotes only (NO_BACKSLASH_ESCAPES, where
    PyMySQL's escaping is one str.replace); a string with quotes, backslashes, NUL or ^Z is
    stored as sent through SQLAlchemy's statements and through the committer's own SQL."""
    engine = db.create_engine_for(mysql_databases["order"], several_statements=True)
    writer = db.DedicatedConnection(engine)
    insert = DriverInsert(orders, NEW_ORDER_COLUMNS, engine.dialect)
    product_id = 500_000 + uuid.uuid4().int % 100_000
    fields = {"productId": product_id, "qty": 1, "totalPrice": 1, "status": "PENDING"}
    keyless = {"idempotencyKey": None, "fingerprint": None}
    with engine.begin() as connection:
        assert "NO_BACKSLASH_ESCAPES" in connection.exec_driver_sql("SELECT @@sql_mode").scalar()
        assert "STRICT_TRANS_TABLES" in connection.exec_driver_sql("SELECT @@sql_mode").scalar()
        for text_ in AWKWARD_TEXTS:
            connection.execute(
                orders.insert().values(**fields, **keyless, owner=text_, createdAt=db.utc_now())
            )
    with writer.transaction() as transaction:
        rows = [{**fields, **keyless, "owner": t, "createdAt": db.utc_now()} for t in AWKWARD_TEXTS]
        transaction.insert_at_commit(insert, rows)
    with engine.connect() as connection:
        owners = (
            connection.execute(
                select(orders.c.owner).where(orders.c.productId == product_id).order_by(orders.c.id)
            )
            .scalars()
            .all()
        )
        found = connection.execute(
            select(func.count()).where(orders.c.owner == AWKWARD_TEXTS[3])
        ).scalar_one()
    assert owners == AWKWARD_TEXTS * 2
    assert found == 2
    engine.dispose()
