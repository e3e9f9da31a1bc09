"""The verify path through PgBouncer in transaction mode, as compose's `pgbouncer` profile runs
it: every transaction may get another server connection, so nothing may be kept on one (the
prepared statements the path once kept there failed: "prepared statement ... already exists").

A PgBouncer of the test's own (Debian's 1.18, run as the postgres user) on a free loopback port,
in front of the machine's PostgreSQL, with one server connection for two gunicorn workers: both
workers' statements take turns on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from apps.accounts.tokens import issue_user_token
from tests.servers import free_port, gunicorn, project_env

from .conftest import code_for, make_device, make_person

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
PEOPLE = 6


@contextlib.contextmanager
def pgbouncer() -> Iterator[int]:
    """PgBouncer in transaction mode with a single server connection; yields its port."""
    db = settings.DATABASES["default"]
    folder = Path(tempfile.mkdtemp(prefix="dbapi-pgbouncer-"))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""
[databases]
* = host={db.get("HOST") or "127.0.0.1"} port={db.get("PORT") or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {folder}/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 20
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    shutil.chown(folder, "postgres")
    for path in folder.iterdir():
        shutil.chown(path, "postgres")
    process = subprocess.Popen(
        ["runuser", "-u", "postgres", "--", PGBOUNCER, str(folder / "pgbouncer.ini")],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _listening(port):
            assert process.poll() is None, (folder / "pgbouncer.log").read_text()
            assert time.monotonic() < deadline, "PgBouncer did not start"
            time.sleep(0.05)
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def verify(base_url: str, token: str, code: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{base_url}/api/v1/otp/verify",
        data=json.dumps({"token": code}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_codes_verify_through_pgbouncer_in_transaction_mode(settings):
    people = [make_person(f"pooled{n}") for n in range(PEOPLE)]
    devices = [make_device(person) for person in people]
    tokens = [issue_user_token(user=person).key for person in people]
    codes = [code_for(device) for device in devices]
    wrong = ["000000" if code != "000000" else "111111" for code in codes]
    with pgbouncer() as port:
        url = f"postgres://postgres@127.0.0.1:{port}/{settings.DATABASES['default']['NAME']}"
        env = project_env(DATABASE_URL=url, DB_CONN_HEALTH_CHECKS="true", OTP_THROTTLE_FACTOR="0")
        with gunicorn(env=env, workers=2) as base_url:
            # A wrong code first (a read and two writes), then the right one (a read and one
            # write), for each person: the two workers' statements interleave on one server
            # connection.
            answers = [verify(base_url, t, w) for t, w in zip(tokens, wrong, strict=True)]
            answers += [verify(base_url, t, c) for t, c in zip(tokens, codes, strict=True)]
    assert answers == [(200, {"status": False})] * PEOPLE + [(200, {"status": True})] * PEOPLE
