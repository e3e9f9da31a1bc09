"""Real servers for tests: free loopback ports and gunicorn running the project."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

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


@contextlib.contextmanager
def redis_server(*args: str) -> Iterator[str]:
    """A Redis server of the test's own on a free loopback port, stopped afterwards; yields its
    URL (database 0). For tests that pause, stop or fail Redis: never the machine's shared one."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            *args,
        ],
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
