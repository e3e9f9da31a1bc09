"""What waiting through apps.core.database costs per query: psycopg2 with libpq's blocking calls,
against the project's wait callback outside a request and inside one (DB_TIMEOUT set).

    python -m bench.wait_callback [--database-url URL] [--queries 20000] [--rounds 9]

One connection runs `SELECT 1` in a loop; the client's CPU time per query is measured, the three
ways alternating round by round, and the medians are printed. It needs no Django set-up: only a
PostgreSQL server (DATABASE_URL, else BENCH_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import psycopg2
from psycopg2 import extensions

from apps.core import database

WAYS = {
    "blocking libpq": (None, contextlib.nullcontext),
    "wait callback, no request": (database.wait, contextlib.nullcontext),
    "wait callback, in a request": (database.wait, lambda: database.timeout(10)),
}


def cpu_per_query(url: str, queries: int, *, callback, scope) -> float:
    extensions.set_wait_callback(callback)
    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor, scope():
            started = time.process_time()
            for _ in range(queries):
                cursor.execute("SELECT 1")
                cursor.fetchone()
            return (time.process_time() - started) / queries * 1e6
    finally:
        connection.close()
        extensions.set_wait_callback(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_url = os.environ.get("DATABASE_URL") or os.environ.get("BENCH_DATABASE_URL")
    parser.add_argument("--database-url", default=default_url)
    parser.add_argument("--queries", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("Set DATABASE_URL (or BENCH_DATABASE_URL), or pass --database-url.")
    results: dict[str, list[float]] = {way: [] for way in WAYS}
    for round_ in range(args.rounds):
        ways = list(WAYS.items())
        for way, (callback, scope) in ways if round_ % 2 else reversed(ways):
            results[way].append(
                cpu_per_query(args.database_url, args.queries, callback=callback, scope=scope)
            )
    for way, values in results.items():
        print(f"{way:28} {statistics.median(values):6.2f} µs CPU per query (median)")


if __name__ == "__main__":
    main()
