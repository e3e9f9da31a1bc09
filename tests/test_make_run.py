"""`make run` serves where it is told: `make run PORT=8300` and `HOST=…`, as a new user types it,
on the embedded default (a SQLite file, no servers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.servers import PROJECT_DIR, free_port


@contextlib.contextmanager
def make_run(tmp_path, *variables: str) -> Iterator[subprocess.Popen]:
    """`make run VAR=…` in a clean environment (no DATABASE_URL, no REDIS_URL); stopped after,
    with runserver's reloader child, as Ctrl-C in its terminal would."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "SQLITE_PATH": str(tmp_path / "db.sqlite3"),
    }
    log = (tmp_path / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "run", *variables],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def wait_for_live(url: str, process: subprocess.Popen, log_path, timeout: float = 90) -> int:
    """The status of /health/live once something answers there (make migrates first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited: {log_path.read_text()}")
        request = urllib.request.Request(url, headers={"Host": "localhost"})
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing answered {url}: {log_path.read_text()}")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """The new user's home and SQLite file, one for the module: the second `make run` finds the
    database the first migrated, as the user's second run would."""
    return tmp_path_factory.mktemp("make-run")


def refuses_connections(host: str, port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


@pytest.mark.slow
def test_make_run_port_serves_on_that_port(home):
    port = free_port()
    with make_run(home, f"PORT={port}") as process:
        status = wait_for_live(
            f"http://127.0.0.1:{port}/health/live", process, home / "make-run.log"
        )
    assert status == 200


@pytest.mark.slow
def test_make_run_host_and_port_serve_on_that_address_only(home):
    port = free_port()
    with make_run(home, "HOST=127.0.0.2", f"PORT={port}") as process:
        status = wait_for_live(
            f"http://127.0.0.2:{port}/health/live", process, home / "make-run.log"
        )
        assert refuses_connections("127.0.0.1", port)
    assert status == 200
