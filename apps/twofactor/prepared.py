"""Server-side prepared statements for the few statements run on every verification.

PostgreSQL parses and plans a statement on every plain execute; for the token-and-devices join
that is most of its cost (measured: 0.18 ms planned each time, 0.055 ms prepared). A prepared
statement is planned once per connection, and connections persist (CONN_MAX_AGE).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from django.db.backends.utils import CursorWrapper

_PLACEHOLDER = re.compile(r"%s")


class PreparedStatement:
    """A named statement, prepared on a PostgreSQL connection the first time that connection
    runs it, then run with EXECUTE. Elsewhere (SQLite, the embedded default) it runs as is.

    Prepared statements belong to the server session: they survive rollbacks, and a new
    connection (after CONN_MAX_AGE, or a failed health check) prepares them again.
    """

    def __init__(self, name: str, sql: str):
        self.name = name
        self.sql = sql
        numbers = itertools.count(1)
        self.prepare_sql = f"PREPARE {name} AS " + _PLACEHOLDER.sub(
            lambda _: f"${next(numbers)}", sql
        )
        count = len(_PLACEHOLDER.findall(sql))
        self.execute_sql = (
            f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
        )

    def execute(self, cursor: CursorWrapper, params: Sequence) -> None:
        connection = cursor.db
        if connection.vendor != "postgresql":
            cursor.execute(self.sql, params)
            return
        prepared = _prepared_on(connection)
        if self.name not in prepared:
            cursor.execute(self.prepare_sql)
            prepared.add(self.name)
        cursor.execute(self.execute_sql, params)


def _prepared_on(connection) -> set[str]:
    """The names prepared on the connection's current server session (its psycopg2 connection:
    Django replaces it when it reconnects, and the new session has none)."""
    session = connection.connection
    known = getattr(connection, "_twofactor_prepared", None)
    if known is None or known[0] is not session:
        known = (session, set())
        connection._twofactor_prepared = known
    return known[1]
