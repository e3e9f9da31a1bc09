"""Stream sends rows as they are read from a server-side cursor: the first arrives before the
database has produced the last, memory stays flat however many there are, and a client that
goes away ends the transaction at once."""

from __future__ import annotations

import tracemalloc

import pytest
from django.db import connection

from tests.rpc.activity import open_transactions, wait_until
from tests.rpc.testing_module import SEQUENCE

pytestmark = pytest.mark.slow

ROWS = 100_000


@pytest.fixture
def sequence(transactional_db):
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SEQUENCE {SEQUENCE}")
    yield
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SEQUENCE {SEQUENCE}")


def rows_taken() -> int:
    """How many rows PostgreSQL has produced so far, seen from another session."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value, is_called FROM {SEQUENCE}")
        last_value, is_called = cursor.fetchone()
    return last_value if is_called else 0


def test_100000_rows_are_sent_as_the_cursor_reads_them_in_flat_memory(rpc, sequence):
    """Server and client run in this process: tracemalloc sees the memory of both."""
    received = []

    def stream() -> None:
        rows = rpc.stream("rpc_testing", "counted", count=ROWS)
        received.append(next(rows))
        received.append(rows_taken())  # how far PostgreSQL got when the first row arrived
        received.append(1 + sum(1 for _ in rows))

    def call() -> None:
        assert len(rpc.call("rpc_testing", "counted", count=ROWS)) == ROWS

    streamed = traced_peak(stream)
    first, taken_when_first_arrived, count = received
    assert first == {"n": 1, "taken": 1}
    assert count == ROWS
    assert rows_taken() == ROWS
    # The cursor is read a batch (2,000 rows) at a time while the rows are sent.
    assert taken_when_first_arrived < ROWS / 10, taken_when_first_arrived
    assert streamed < 4 * 1024 * 1024, streamed
    held = traced_peak(call)  # the same rows answered whole, for comparison
    assert streamed * 10 < held, (streamed, held)


def traced_peak(run) -> int:
    """The most memory Python held above the start while `run()` ran."""
    tracemalloc.start()
    try:
        start, _ = tracemalloc.get_traced_memory()
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - start


def test_a_client_that_stops_early_ends_the_transaction_at_once(rpc, log_lines):
    rows = rpc.stream("example", "numbers", count=ROWS)
    assert next(rows)["n"] == 1
    assert open_transactions() == 1  # the server's, holding the cursor
    rows.close()  # cancels the call
    wait_until(lambda: open_transactions() == 0)
    wait_until(lambda: log_lines(grpc_method="/dbapi.v1.Actions/Stream"))
    [logged] = log_lines(grpc_method="/dbapi.v1.Actions/Stream")
    assert logged["grpc_code"] == "CANCELLED"
