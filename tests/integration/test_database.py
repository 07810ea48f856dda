"""The database adapters against the real MariaDB: connections that the server dropped are
replaced by themselves."""

import pymysql
from sqlalchemy import text

from service_kit.storage import db


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
