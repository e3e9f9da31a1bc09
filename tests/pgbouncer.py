"""PgBouncer for tests: Debian's package (1.18), transaction pooling, on a free loopback port in
front of the machine's PostgreSQL; stopped afterwards. It refuses to run as root, so it runs as
the `postgres` user from a directory of its own."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg2

from tests.servers import free_port, stop, wait_until

PGBOUNCER = "/usr/sbin/pgbouncer"


def _answers(port: int) -> bool:
    try:
        psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
    except psycopg2.OperationalError:
        return False
    return True


@contextlib.contextmanager
def pgbouncer(*, host: str, port: int) -> Iterator[int]:
    """PgBouncer in transaction mode in front of PostgreSQL at host:port; yields its port."""
    if not Path(PGBOUNCER).exists():
        raise RuntimeError("pgbouncer is not installed: `make test` installs it.")
    user = pwd.getpwnam("postgres")
    directory = Path(tempfile.mkdtemp(prefix="dbapi-pgbouncer-"))
    listen = free_port()
    try:
        (directory / "users.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={host} port={port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {listen}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {directory / 'users.txt'}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            "default_pool_size = 20\n"
            f"logfile = {directory / 'pgbouncer.log'}\n"
        )
        os.chown(directory, user.pw_uid, user.pw_gid)
        process = subprocess.Popen(
            [PGBOUNCER, str(directory / "pgbouncer.ini")],
            user=user.pw_uid,
            group=user.pw_gid,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: _answers(listen), timeout=10)
            yield listen
        finally:
            stop(process, timeout=5)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
