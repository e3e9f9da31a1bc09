"""What the gRPC server's sessions are doing in the test database, seen from the test's own
session, and a bounded wait for it to change."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection


def wait_until(condition: Callable[[], object], *, timeout: float = 10.0) -> None:
    """Until `condition()` is true; fails after `timeout` seconds (a bound, not a measure)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still not true after {timeout} s: {condition.__name__}")
        time.sleep(0.02)


def other_sessions(where: str = "TRUE") -> int:
    """Sessions on the test database other than this one, matching `where` (SQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            f"AND pid <> pg_backend_pid() AND ({where})"
        )
        return cursor.fetchone()[0]


def open_transactions() -> int:
    """Other sessions in a transaction (the server's, while an action runs or streams)."""
    return other_sessions("xact_start IS NOT NULL")


def wait_for_sleep_in_flight() -> None:
    """Until a server thread is inside the `rpc_testing/sleep` action's query."""

    def sleeping() -> bool:
        return bool(other_sessions("query LIKE '%%SELECT pg_sleep(%%' AND state = 'active'"))

    wait_until(sleeping)
