"""INSERTs run on a driver cursor (the group committer's own connection), with the SQL generated
from a SQLAlchemy `Table` and every value bound by its column's type, as SQLAlchemy itself
binds it: no column list or type conversion is written twice."""

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, Table, insert
from sqlalchemy.engine import Compiled, Dialect


def positional_order(compiled: Compiled) -> tuple[str, ...] | None:
    """The names of a compiled statement's parameters in the order a positional paramstyle
    sends them (None for a named one), as SQLAlchemy's public `ExpandedState` gives them."""
    state = compiled.construct_expanded_state(dict.fromkeys(compiled.params))  # type: ignore[attr-defined]
    return None if state.positiontup is None else tuple(state.positiontup)


class DriverInsert:
    """`INSERT INTO table (columns) VALUES (...)` in the dialect's own SQL and parameter style."""

    def __init__(self, table: Table, columns: Sequence[str], dialect: Dialect) -> None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
        self.sql = str(compiled)
        self._head, separator, self._values = self.sql.partition(" VALUES ")
        if not separator:
            raise ValueError(f"not an INSERT ... VALUES: {self.sql}")
        self._order = positional_order(compiled)
        # The dialect's own type (a TypeDecorator's load_dialect_impl), as SQLAlchemy binds it:
        # Money is text on SQLite, and Numeric's generic binder would make it a float there.
        self._binders = [
            (name, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in columns
        ]

    def parameters(self, row: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """The row's values as the driver takes them (named or positional)."""
        bound = {
            name: row[name] if process is None else process(row[name])
            for name, process in self._binders
        }
        return bound if self._order is None else tuple(bound[name] for name in self._order)

    def rows(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """One statement for all the rows (PyMySQL sends one multi-row INSERT)."""
        cursor.executemany(self.sql, [self.parameters(row) for row in rows])

    def literal_sql(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> str:
        """One multi-row INSERT with the values escaped in by the driver (`mogrify`, a PyMySQL
        cursor's), for a packet of several statements."""
        return f"{self._head} VALUES " + ",".join(
            cursor.mogrify(self._values, self.parameters(row)) for row in rows
        )

    def rows_with_ids(
        self, cursor: Any, rows: Sequence[Mapping[str, Any]], *, consecutive_ids: bool
    ) -> Sequence[int]:
        """The rows' auto-increment ids: from one multi-row INSERT where the database hands out
        consecutive ids to it (`consecutive_ids`, see storage.db), else a row at a time."""
        if consecutive_ids:
            self.rows(cursor, rows)
            return range(cursor.lastrowid, cursor.lastrowid + len(rows))
        ids = []
        for row in rows:
            cursor.execute(self.sql, self.parameters(row))
            ids.append(cursor.lastrowid)
        return ids


class DriverSelect:
    """A SELECT run on a driver cursor, its rows read back by their columns' types as SQLAlchemy
    reads them (aware UTC times, exact money on SQLite too). The values are given as the driver
    takes them: bind a typed value with its column's `bind_processor` first."""

    def __init__(self, query: Select, dialect: Dialect) -> None:
        compiled = query.compile(dialect=dialect)
        self.sql = str(compiled)
        self._order = positional_order(compiled)
        self._readers = [
            (column.key, column.type.dialect_impl(dialect).result_processor(dialect, None))
            for column in query.selected_columns
        ]

    def rows(self, cursor: Any, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        cursor.execute(
            self.sql, values if self._order is None else tuple(values[p] for p in self._order)
        )
        return [
            {
                name: value if read is None else read(value)
                for (name, read), value in zip(self._readers, row, strict=True)
            }
            for row in cursor.fetchall()
        ]
