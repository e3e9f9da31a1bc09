"""Real servers for tests: free loopback ports and gunicorn running the project."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import redis
from django.conf import settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def redis_db() -> str:
    """The number of the suite's Redis database."""
    return urlsplit(settings.REDIS_URL).path.lstrip("/") or "0"


def cache_at(location: str) -> dict:
    """The project's CACHES, pointed at another Redis URL."""
    default = {**settings.CACHES["default"], "LOCATION": location}
    return {**settings.CACHES, "default": default}


def database_url(alias: str = "default") -> str:
    """A URL for the database the tests use (pytest-django's test database, not the real one)."""
    db = settings.DATABASES[alias]
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def project_env(**overrides: str) -> dict[str, str]:
    """The environment a subprocess of the project gets: this one, pointed at the test databases."""
    env = dict(os.environ)
    # Its Redis database is this worker's already (tests/settings.py), named in REDIS_URL.
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update(
        REDIS_URL=settings.REDIS_URL,
        CACHE_KEY_PREFIX=settings.CACHE_KEY_PREFIX,
        PYTHONUNBUFFERED="1",
    )
    for alias in settings.DATABASES:
        name = "DATABASE_URL" if alias == "default" else f"DATABASE_URL_{alias.upper()}"
        env[name] = database_url(alias)
    env.update(overrides)
    return env


def call_wsgi(application, environ: dict) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI application as a server does; return status, headers and body."""
    answer = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=dict(headers))

    result = application(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answer["status"], answer["headers"], body


def post_action(url: str, body: dict, key: str, *, timeout: float = 15):
    """POST a JSON body with an API key to a real server; (status, headers, decoded answer)."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def wait_until(condition, *, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Wait for `condition()` to hold, checking every `interval`; fail after `timeout` seconds
    (a bound on a wait, not a measurement: what the test asserts is the condition)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{condition.__name__} never held within {timeout} s")
        time.sleep(interval)


def wait_for_http(url: str, *, timeout: float = 20.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering {url}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered, even if not with 200
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing answered {url} within {timeout}s")


def stop(process: subprocess.Popen, *, timeout: float = 15) -> None:
    """Stop a server as its supervisor would: SIGTERM, and SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def gunicorn(
    *,
    env: dict[str, str] | None = None,
    workers: int = 1,
    args: tuple[str, ...] = (),
    stdout=subprocess.DEVNULL,
    port: int | None = None,
) -> Iterator[str]:
    """Run the project under gunicorn on a free loopback port (or `port`, for a test that must
    name its origin in the server's settings beforehand); yields its base URL."""
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        # Its control socket would be one path in $HOME for every gunicorn running at once.
        "--no-control-socket",
        *args,
    ]
    process = subprocess.Popen(
        command,
        cwd=PROJECT_DIR,
        env=env if env is not None else project_env(),
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not subprocess.DEVNULL else subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/health/live", process=process)
        yield base_url
    finally:
        stop(process)


def peak_rss_kib(pid: int) -> int:
    """A process's peak resident set size so far (VmHWM), in KiB, from the kernel."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def reset_peak_rss_kib(pid: int) -> int:
    """Start a process's peak afresh: the kernel sets VmHWM to what it holds now, returned."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return peak_rss_kib(pid)


def worker_pid(base_url: str) -> int:
    """The one worker of the gunicorn serving `base_url` (its master is our child)."""
    port = base_url.rsplit(":", 1)[1]
    out = subprocess.run(["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True)
    pids = {int(p.split("=")[1]) for p in out.stdout.replace(",", " ").split() if "pid=" in p}
    children = subprocess.run(
        ["pgrep", "-P", ",".join(map(str, pids))], capture_output=True, text=True
    ).stdout.split()
    [worker] = [int(pid) for pid in children]
    return worker


@contextlib.contextmanager
def grpcserver(*, env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """Run `manage.py grpcserver` on a free loopback port until it serves; yields its target."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    target = f"127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "grpcserver", "--bind", target, "--workers", str(workers)],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"grpcserver exited with {process.returncode}")
                try:
                    health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    break
                except grpc.RpcError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"grpcserver did not serve {target}") from None
                    time.sleep(0.1)
        yield target
    finally:
        stop(process)


@contextlib.contextmanager
def redis_server(*args: str) -> Iterator[str]:
    """A Redis server of the test's own on a free loopback port, stopped afterwards; yields its
    URL (database 0). For tests that pause, stop or fail Redis: never the machine's shared one.
    It works in a temporary directory: whatever it would write (a replica's snapshot) lands there,
    not in the project."""
    port = free_port()
    directory = tempfile.TemporaryDirectory(prefix="dbapi-redis-")
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            directory.name,
            "--save",
            "",
            "--appendonly",
            "no",
            *args,
        ],
        cwd=directory.name,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.02)
        yield url
    finally:
        stop(process)
        directory.cleanup()


@dataclass(frozen=True)
class Backend:
    """A session of the test database other than the test's own: a server's connection."""

    pid: int
    state: str | None  # pg_stat_activity's: "idle", "active", "idle in transaction"…
    locks: int  # the locks it holds (any transaction holds one at least: its virtualxid)


def server_backends() -> list[Backend]:
    """The test database's other client sessions (the servers' connections), with their state
    and locks: what a call that ended must leave idle, outside any transaction, holding none."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.state, count(l.pid) FROM pg_stat_activity a "
            "LEFT JOIN pg_locks l ON l.pid = a.pid "
            "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND a.backend_type = 'client backend' GROUP BY a.pid, a.state ORDER BY a.pid"
        )
        return [Backend(pid=pid, state=state, locks=locks) for pid, state, locks in cursor]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (gunicorn's workers, a postmaster's backends)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as file:
                # pid (comm) state ppid …: comm may hold spaces and parentheses, so split after it.
                fields = file.read().rpartition(")")[2].split()
        except OSError:
            continue  # ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return sorted(found)


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster of the test's own, on a free loopback port: one the test may freeze
    (SIGSTOP) without touching the machine's shared server."""

    directory: Path
    port: int

    def url(self, database: str = "dbapi") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "dbapi"):
        return psycopg2.connect(self.url(database), connect_timeout=5)

    def postmaster(self) -> int:
        return int((self.directory / "data" / "postmaster.pid").read_text().split()[0])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Inside the block, every process of the cluster is stopped: it accepts TCP connections
        (the kernel does) and keeps them open, but answers nothing. Thawed on the way out."""
        postmaster = self.postmaster()
        stopped = [postmaster]
        try:
            os.kill(postmaster, signal.SIGSTOP)  # first: it starts no backend while stopped
            for pid in children(postmaster):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
            yield
        finally:
            for pid in reversed(stopped):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)


def _postgres_bin(program: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}")) or [shutil.which(program)]
    if not found[-1]:
        raise RuntimeError(f"{program} is not installed (Debian: postgresql)")
    return found[-1]


def _as_postgres(command: list[str], *, check: bool = True) -> subprocess.CompletedProcess:
    """Run a server program as the `postgres` user: initdb and postgres refuse root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    return subprocess.run(command, check=check, capture_output=True, text=True)


@contextlib.contextmanager
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A new PostgreSQL cluster in a temporary directory, with an empty `dbapi` database;
    stopped (thawed first, if a test left it frozen) and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="dbapi-pg-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres")
    data = directory / "data"
    port = free_port()
    _as_postgres([_postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-N"])
    options = f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = _postgres_bin("pg_ctl")
    _as_postgres(
        [pg_ctl, "-D", str(data), "-o", options, "-l", str(directory / "log"), "-w", "start"]
    )
    cluster = PostgresCluster(directory=directory, port=port)
    try:
        with contextlib.closing(cluster.connect("postgres")) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE dbapi")
        yield cluster
    finally:
        with contextlib.suppress(OSError, ValueError):
            for pid in [cluster.postmaster(), *children(cluster.postmaster())]:
                os.kill(pid, signal.SIGCONT)
        _as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "stop"], check=False)
        shutil.rmtree(directory, ignore_errors=True)
