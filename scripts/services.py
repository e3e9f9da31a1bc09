"""Make sure PostgreSQL and Redis answer before the tests run; under CI=true, start them.

Reads DATABASE_URL (and DATABASE_URL_<ALIAS>) and REDIS_URL, and creates the databases the
URLs name when they are missing.
Exits non-zero with a plain message when a server cannot be reached: the suite never falls back
to SQLite or local memory, and never skips.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit

import psycopg2
import redis
from psycopg2 import sql

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect {version} main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 --port {port} --save "" --appendonly no'
)


def connect_postgres(url: str):
    """A connection to the server's `postgres` database (which always exists)."""
    parts = urlsplit(url)
    return psycopg2.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        dbname="postgres",
        connect_timeout=3,
    )


def postgres_answers(url: str) -> bool:
    try:
        connect_postgres(url).close()
    except psycopg2.OperationalError:
        return False
    return True


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=3).ping())
    except redis.RedisError:
        return False


def create_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    connection = connect_postgres(url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"services: created database {name}")
    finally:
        connection.close()


def start(command: str) -> None:
    print(f"services: starting: {command}", flush=True)
    subprocess.run(command, shell=True, check=False)  # noqa: S602 (fixed commands, no input)


def wait_until(answers, url: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not answers(url):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def main() -> int:
    ci = os.environ.get("CI") == "true"
    database_url, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    patience = 30 if ci else 1
    missing = []
    if not postgres_answers(database_url):
        if ci:
            for version in sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*")):
                start(START_POSTGRES.format(version=version))
        if not wait_until(postgres_answers, database_url, patience):
            missing.append(f"PostgreSQL at {urlsplit(database_url).netloc}")
    if not redis_answers(redis_url):
        if ci:
            start(START_REDIS.format(port=urlsplit(redis_url).port or 6379))
        if not wait_until(redis_answers, redis_url, patience):
            missing.append(f"Redis at {urlsplit(redis_url).netloc}")
    if missing:
        print(f"services: no answer from {' and '.join(missing)}.")
        print("services: the tests need both; start them, or run with CI=true to start them.")
        return 1
    for name, url in sorted(os.environ.items()):
        if name == "DATABASE_URL" or (name.startswith("DATABASE_URL_") and url):
            create_database(url)
    print("services: PostgreSQL and Redis answer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
