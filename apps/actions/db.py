"""`Db`: the few statements actions write again and again, over one Django connection.

Values are always query parameters, never formatted into SQL. Table and column names come from
code, not from requests; even so they are checked against a plain-identifier pattern and quoted
by the connection, so a name that slipped through from input cannot change the statement.
Works on PostgreSQL and SQLite (3.35+ for RETURNING).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from django.db.backends.base.base import BaseDatabaseWrapper

if TYPE_CHECKING:
    from django.db.backends.utils import CursorWrapper

Params = Mapping[str, Any] | Sequence[Any]

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Names already checked and quoted, per database vendor: the same few, on every call. Bounded,
# in case some code builds names at run time.
_QUOTED: dict[tuple[str, str], str] = {}
QUOTED_LIMIT = 4096


class UnsafeQuery(ValueError):
    """A statement the helper refuses to build: a suspicious name, or no WHERE clause."""


class Db:
    """A thin layer over one Django connection, used inside the action's transaction.

    Its statements share one Django cursor (a client-side one: no server resource), opened at
    the first and again only once it, or the connection under it, was closed: opening a cursor
    costs more than a short statement, and an action runs several.
    """

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        self._open: CursorWrapper | None = None
        self._open_on: Any = None  # the DB-API connection it was opened on

    def _cursor(self) -> CursorWrapper:
        cursor = self._open
        if (
            cursor is None
            or self._open_on is not self.connection.connection
            or getattr(cursor.cursor, "closed", False)  # psycopg2's (sqlite3's have none)
        ):
            cursor = self._open = self.connection.cursor()
            self._open_on = self.connection.connection
        return cursor

    # --- Reading -------------------------------------------------------------------------------

    def fetch_all(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """Run a query and return every row as a dict keyed by column name."""
        cursor = self._cursor()
        cursor.execute(sql, params)
        return _rows(cursor)

    def fetch_one(self, sql: str, params: Params = ()) -> dict[str, Any] | None:
        """The first row as a dict, or None when there is none."""
        cursor = self._cursor()
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else _row_maker(cursor)(row)

    def fetch_value(self, sql: str, params: Params = ()) -> Any:
        """The first column of the first row, or None when there is no row."""
        cursor = self._cursor()
        cursor.execute(sql, params)
        row = cursor.fetchone()
        return None if row is None else row[0]

    def iterate(self, sql: str, params: Params = (), *, batch: int = 2000) -> Iterator[dict]:
        """Yield rows one by one without holding them all in memory.

        On PostgreSQL this is a server-side cursor, rows fetched `batch` at a time, inside a
        transaction (an action's). Outside one, Django would declare it WITH HOLD, a cursor that
        outlives the transaction, which transaction pooling (PgBouncer) cannot keep: with the
        database's DISABLE_SERVER_SIDE_CURSORS (DB_DISABLE_SERVER_SIDE_CURSORS) the rows are then
        read with a plain cursor instead.
        """
        server_side = self.connection.in_atomic_block or not self.connection.settings_dict.get(
            "DISABLE_SERVER_SIDE_CURSORS"
        )
        with (
            self.connection.chunked_cursor() if server_side else self.connection.cursor() as cursor
        ):
            cursor.execute(sql, params)
            chunk = cursor.fetchmany(batch)
            make = _row_maker(cursor)  # a named cursor describes its rows after a fetch
            while chunk:
                for row in chunk:
                    yield make(row)
                chunk = cursor.fetchmany(batch)

    # --- Writing -------------------------------------------------------------------------------

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; returns the number of rows it changed."""
        cursor = self._cursor()
        cursor.execute(sql, params)
        return cursor.rowcount

    def insert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        returning: Sequence[str] | str | None = "*",
    ) -> dict[str, Any] | None:
        """INSERT one row; returns the RETURNING columns (all by default), or None."""
        columns, placeholders, params = self._values(values)
        sql = f"INSERT INTO {self.quote(table)} ({columns}) VALUES ({placeholders})"
        return self._write_one(sql + self._returning(returning), params, returning)

    def upsert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        conflict: Sequence[str],
        update: Sequence[str] | None = None,
        returning: Sequence[str] | str | None = "*",
    ) -> dict[str, Any] | None:
        """INSERT … ON CONFLICT (conflict) DO UPDATE; returns the row as it now stands.

        `update` names the columns to overwrite when the row exists (default: every column in
        `values` outside `conflict`). With nothing to update, the conflicting row is still
        returned, unchanged.
        """
        if not conflict:
            raise UnsafeQuery("upsert needs the conflict columns (a unique constraint).")
        if update is None:
            update = [column for column in values if column not in conflict]
        columns, placeholders, params = self._values(values)
        # Setting a conflict column to itself changes nothing but lets RETURNING see the row.
        assignments = ", ".join(
            f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in (update or conflict[:1])
        )
        target = ", ".join(self.quote(c) for c in conflict)
        sql = (
            f"INSERT INTO {self.quote(table)} ({columns}) VALUES ({placeholders}) "
            f"ON CONFLICT ({target}) DO UPDATE SET {assignments}"
        )
        return self._write_one(sql + self._returning(returning), params, returning)

    def update(self, table: str, values: Mapping[str, Any], where: Mapping[str, Any]) -> int:
        """UPDATE the rows matching every `where` column; returns how many changed."""
        if not values:
            raise UnsafeQuery("update needs at least one column to set.")
        assignments = ", ".join(f"{self.quote(c)} = %s" for c in values)
        condition, where_params = self._where(where)
        sql = f"UPDATE {self.quote(table)} SET {assignments} WHERE {condition}"
        return self.execute(sql, [*values.values(), *where_params])

    def delete(self, table: str, where: Mapping[str, Any]) -> int:
        """DELETE the rows matching every `where` column; returns how many went."""
        condition, params = self._where(where)
        return self.execute(f"DELETE FROM {self.quote(table)} WHERE {condition}", params)

    # --- Building blocks -----------------------------------------------------------------------

    def quote(self, name: str) -> str:
        """Quote a table or column name (`schema.table` allowed) after checking it is plain."""
        key = (self.connection.vendor, name)
        quoted = _QUOTED.get(key) if isinstance(name, str) else None
        if quoted is None:
            parts = name.split(".") if isinstance(name, str) else [name]
            if not 1 <= len(parts) <= 2 or not all(
                isinstance(p, str) and IDENTIFIER.fullmatch(p) for p in parts
            ):
                raise UnsafeQuery(f"{name!r} is not a plain SQL identifier.")
            quoted = ".".join(self.connection.ops.quote_name(part) for part in parts)
            if len(_QUOTED) < QUOTED_LIMIT:
                _QUOTED[key] = quoted
        return quoted

    def _values(self, values: Mapping[str, Any]) -> tuple[str, str, list[Any]]:
        if not values:
            raise UnsafeQuery("insert needs at least one column.")
        columns = ", ".join(self.quote(c) for c in values)
        return columns, ", ".join(["%s"] * len(values)), list(values.values())

    def _where(self, where: Mapping[str, Any]) -> tuple[str, list[Any]]:
        if not where:
            raise UnsafeQuery("Refusing to change every row: `where` is empty.")
        clauses, params = [], []
        for column, value in where.items():
            if value is None:
                clauses.append(f"{self.quote(column)} IS NULL")
            else:
                clauses.append(f"{self.quote(column)} = %s")
                params.append(value)
        return " AND ".join(clauses), params

    def _returning(self, returning: Sequence[str] | str | None) -> str:
        if returning is None:
            return ""
        if returning == "*":
            return " RETURNING *"
        names = [returning] if isinstance(returning, str) else list(returning)
        return " RETURNING " + ", ".join(self.quote(c) for c in names)

    def _write_one(self, sql: str, params: list[Any], returning: Any) -> dict[str, Any] | None:
        cursor = self._cursor()
        cursor.execute(sql, params)
        if returning is None:
            return None
        row = cursor.fetchone()
        return None if row is None else _row_maker(cursor)(row)


# PostgreSQL type oids of json and jsonb: Django's psycopg2 backend leaves them as text (so its
# JSONField can decode them itself); rows fetched here decode them, so results nest naturally.
JSON_TYPES = frozenset({114, 3802})


def _row_maker(cursor):
    """A function turning a fetched tuple into a dict, decoding json columns."""
    description = cursor.description  # built anew on each read
    columns = [column[0] for column in description]
    json_at = [i for i, column in enumerate(description) if column[1] in JSON_TYPES]
    if not json_at:
        return lambda row: dict(zip(columns, row, strict=True))

    def make(row):
        values = list(row)
        for i in json_at:
            if isinstance(values[i], str):
                values[i] = json.loads(values[i])
        return dict(zip(columns, values, strict=True))

    return make


def _rows(cursor) -> list[dict[str, Any]]:
    make = _row_maker(cursor)
    return [make(row) for row in cursor.fetchall()]
