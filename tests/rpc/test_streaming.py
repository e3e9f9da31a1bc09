"""Stream sends rows as they are read from a server-side cursor: the first arrives before the
database has produced the last, memory stays flat however many there are, and a client that
goes away ends the transaction at once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection

from tests.rpc.activity import open_transactions, wait_until
from tests.rpc.testing_module import SEQUENCE
from tests.servers import PROJECT_DIR, peak_rss_kib, project_env, reset_peak_rss_kib

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


# Server and client run in one process of the test's own, started afresh: its peak resident set
# size (the kernel's VmHWM, which the test resets before each step) is the memory of both and of
# nothing else, where this process holds whatever earlier tests left, and tracemalloc would slow
# every one of the rows' allocations. It warms up on a few rows of example/numbers (imports, a
# connection, a cursor), then answers the test's lines: `stream` (the first row), `rest` (how
# many rows in all) and `call` (how many rows answered whole), on its stdout; what it logs goes
# to its stderr.
STREAMER = """
import json, sys
answers, sys.stdout = sys.stdout, sys.stderr
import django
django.setup()
from apps.rpc.client import ActionsClient
from apps.rpc.server import build_server
from tests.rpc import testing_module
key, count = sys.argv[1], int(sys.argv[2])
server = build_server(bind="127.0.0.1:0", workers=4)
server.start()
client = ActionsClient(f"127.0.0.1:{server.port}", key)
assert len(list(client.stream("example", "numbers", count=10))) == 10
assert len(client.call("example", "numbers", count=10)) == 10
print("ready", file=answers, flush=True)
for line in sys.stdin:
    if line == "stream\\n":
        rows = client.stream("rpc_testing", "counted", count=count)
        print(json.dumps(next(rows)), file=answers, flush=True)
    elif line == "rest\\n":
        print(1 + sum(1 for _ in rows), file=answers, flush=True)
    elif line == "call\\n":
        print(len(client.call("rpc_testing", "counted", count=count)), file=answers, flush=True)
client.close()
server.stop(grace=5)
"""


class Streamer:
    """The serving and calling process; `ask` sends it a line and returns its answer."""

    def __init__(self, key: str, log: Path):
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", STREAMER, key, str(ROWS)],
                cwd=PROJECT_DIR,
                env=project_env(),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        assert self.answer() == "ready"

    def answer(self) -> str:
        line = self.process.stdout.readline()
        assert line, f"the streaming process ended:\n{self.log.read_text()[-3000:]}"
        return line.strip()

    def ask(self, line: str):
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()
        return json.loads(self.answer())

    def peak_growth_kib(self) -> Callable[[], int]:
        """Its peak memory from now on, above what it holds now: call the result to read it."""
        pid = self.process.pid
        now = reset_peak_rss_kib(pid)
        return lambda: peak_rss_kib(pid) - now

    def close(self) -> None:
        self.process.stdin.close()
        try:
            assert self.process.wait(timeout=15) == 0
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def test_100000_rows_are_sent_as_the_cursor_reads_them_in_flat_memory(api_key, sequence, tmp_path):
    streamer = Streamer(api_key, tmp_path / "streamer.log")
    try:
        streaming = streamer.peak_growth_kib()
        first = streamer.ask("stream")
        taken_when_first_arrived = rows_taken()  # how far PostgreSQL got when it arrived
        count = streamer.ask("rest")
        streamed = streaming()
        taken_in_all = rows_taken()
        calling = streamer.peak_growth_kib()
        answered_whole = streamer.ask("call")  # the same rows answered whole, for comparison
        held = calling()
    finally:
        streamer.close()
    assert first == {"n": 1, "taken": 1}
    assert count == taken_in_all == ROWS
    assert answered_whole == ROWS
    # The cursor is read a batch (2,000 rows) at a time while the rows are sent.
    assert taken_when_first_arrived < ROWS / 10, taken_when_first_arrived
    assert streamed < 4 * 1024, streamed  # KiB
    assert streamed * 10 < held, (streamed, held)


def test_a_client_that_stops_early_ends_the_transaction_at_once(rpc, log_lines):
    rows = rpc.stream("example", "numbers", count=ROWS)
    assert next(rows)["n"] == 1
    assert open_transactions() == 1  # the server's, holding the cursor
    rows.close()  # cancels the call
    wait_until(lambda: open_transactions() == 0)
    wait_until(lambda: log_lines(grpc_method="/dbapi.v1.Actions/Stream"))
    [logged] = log_lines(grpc_method="/dbapi.v1.Actions/Stream")
    assert logged["grpc_code"] == "CANCELLED"
