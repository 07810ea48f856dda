"""SQLite reuses the largest rowid of a table without AUTOINCREMENT once its row is deleted: a
new product would take the id of a deleted one, and the orders of the old one would seem to be
its own. Both services' migrations recreate their entity table with AUTOINCREMENT on SQLite
(MariaDB/MySQL's AUTO_INCREMENT never hands an id out twice: nothing to do there)."""

from alembic import op


def recreate_with_autoincrement(table: str) -> None:
    """`table` rebuilt as it is (columns reflected with their stored types, rows, indexes),
    with AUTOINCREMENT on its integer primary key; SQLite only. An id freed at the end of the
    table before this ran cannot be known any more; none is reused from here on."""
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass


def recreate_without_autoincrement(table: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": False}
    ):
        pass
