"""Behind PgBouncer in transaction pooling mode (Debian's 1.18, no prepared statements across
transactions), with the settings the README gives for it: the actions' and the hit counter's
tests, all of those that use DATABASE_URL, pass once more, their DATABASE_URL through a PgBouncer
this test starts.

Each statement may run on another server connection than the last, so session state (a `SET`, a
WITH HOLD cursor, a session advisory lock, a prepared statement) would leak or be lost: the
suites' transactions, idempotency locks, statement timeouts, streams and flushes show none is
relied on. A pytest in a subprocess, on databases of its own (`…_pgbouncer`), made through
PgBouncer and dropped afterwards straight on PostgreSQL.

Tests marked `without_database_url` are left out of that run: what they show runs without
DATABASE_URL's server (on a PostgreSQL the test starts and freezes, on a port where nothing
listens, on Redis alone, or with no database), so behind PgBouncer they would only repeat
themselves.
"""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg2
import pytest
from django.conf import settings

from tests.pgbouncer import pgbouncer
from tests.servers import PROJECT_DIR

pytestmark = [pytest.mark.slow, pytest.mark.longest]

# The whole actions and hit-counter test modules, once more (PGBOUNCER_TESTS names others, e.g.
# one file while working on it).
SUITES = os.environ.get("PGBOUNCER_TESTS", "").split() or ["tests/actions", "tests/hits"]


def drop_databases(names: list[str]) -> None:
    database = settings.DATABASES["default"]
    connection = psycopg2.connect(
        host=database["HOST"] or "127.0.0.1",
        port=database["PORT"] or 5432,
        user=database["USER"] or "postgres",
        password=database["PASSWORD"] or None,
        dbname="postgres",
    )
    connection.autocommit = True  # DROP DATABASE runs outside a transaction
    try:
        with connection.cursor() as cursor:
            for name in names:
                cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


def test_the_actions_and_hits_tests_pass_through_pgbouncer():
    database = settings.DATABASES["default"]
    name = f"{database['NAME']}_pgbouncer"
    test_databases = [f"test_{name}", f"test_{name}_reporting"]
    drop_databases(test_databases)
    try:
        with pgbouncer(host=database["HOST"] or "127.0.0.1", port=database["PORT"] or 5432) as port:
            url = f"postgres://postgres@127.0.0.1:{port}/{name}"
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "DATABASE_URL_REPORTING": f"{url}_reporting",
                "REDIS_URL": settings.REDIS_URL,
                # What the README asks for behind PgBouncer.
                "DB_CONN_HEALTH_CHECKS": "true",
                "DB_DISABLE_SERVER_SIDE_CURSORS": "true",
            }
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    *SUITES,
                    "-q",
                    "-x",
                    "-p",
                    "no:cacheprovider",
                    # Made through PgBouncer, never dropped through it (its pooled server
                    # connections would hold them): --reuse-db, and this test drops them.
                    "-o",
                    "addopts=--strict-markers -ra",
                    "--reuse-db",
                    # What runs without DATABASE_URL's server would only repeat itself.
                    "-m",
                    "not without_database_url",
                    # Behind PgBouncer a PostgreSQL restart does not end the application's
                    # connections (PgBouncer's are replaced): no first call fails, so this one
                    # expectation of a direct connection does not hold, for the better.
                    "--deselect",
                    "tests/actions/test_outages.py::test_after_a_database_restart_a_kept_"
                    "connection_is_replaced[without-health-checks]",
                ],
                cwd=PROJECT_DIR,
                env=env,
                capture_output=True,
                text=True,
                timeout=900,
            )
    finally:
        drop_databases(test_databases)
    summary = result.stdout[-3000:] + result.stderr[-3000:]
    assert result.returncode == 0, summary
    assert " passed" in result.stdout.splitlines()[-1], summary
