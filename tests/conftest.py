"""Fixtures shared by every test. The suite runs against real PostgreSQL and Redis, never
SQLite or local memory: `make test` points DATABASE_URL and REDIS_URL at this machine's servers."""

from __future__ import annotations

import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.conf import settings
from django.core.cache import cache

from tests.servers import (
    PROJECT_DIR,
    PostgresCluster,
    cache_at,
    free_port,
    postgres_cluster,
    project_env,
    redis_client,
    redis_db,
)


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    backend = settings.CACHES["default"]["BACKEND"]
    if engine != "django.db.backends.postgresql" or backend != "django_redis.cache.RedisCache":
        raise pytest.UsageError(
            "The tests need real PostgreSQL and Redis. Run `make test`, or set DATABASE_URL "
            f"and REDIS_URL (got database {engine!r} and cache {backend!r})."
        )
    # Hypothesis (under Schemathesis) keeps its examples and constants in ./.hypothesis, the
    # project, unless told otherwise.
    from hypothesis.configuration import set_hypothesis_home_dir

    config.hypothesis_home = tempfile.mkdtemp(prefix="dbapi-hypothesis-")
    set_hypothesis_home_dir(config.hypothesis_home)
    if not hasattr(config, "workerinput"):  # once, in the process that reports (pytest-xdist)
        config.source_tree_before = source_tree_files()
        # pytest-xdist would hand out modules by their number of tests, the largest first, and
        # undo the order pytest_collection_modifyitems gives them (the longest ones first).
        if hasattr(config.option, "loadscopereorder"):
            config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """Schemathesis names each operation's test `…[POST /actions/batch]`, but pytest 9.2 builds a
    node id from the original name alone: every operation had one id, which pytest-xdist ran
    once and --durations could not tell apart. The operation goes back into the id.

    Under pytest-xdist (`--dist loadfile`) modules are handed out in collection order: those
    with a test of a minute or more (`longest`) go first, then those with slow or browser tests,
    so that no worker is left alone with one at the end."""
    from schemathesis.pytest.plugin import SchemathesisFunction

    for item in items:
        named = isinstance(item, SchemathesisFunction) and item.operation_label
        if named and item._id.params is None:
            item._id = item._id.with_params(item.operation_label)
    if hasattr(config, "workerinput"):
        longest = {i.path for i in items if i.get_closest_marker("longest")}
        heavy = {
            i.path for i in items if i.get_closest_marker("slow") or i.get_closest_marker("browser")
        }
        # Stable: modules stay whole.
        items.sort(key=lambda item: (item.path not in longest, item.path not in heavy))


def pytest_unconfigure(config):
    shutil.rmtree(getattr(config, "hypothesis_home", ""), ignore_errors=True)


GIT_NEW_FILES = ["git", "status", "--porcelain", "--untracked-files=all", "--ignored"]


def source_tree_files() -> set[str] | None:
    """The files git would list as new in the project, ignored ones included (a test that wrote
    dump.rdb or .hypothesis/ would hide behind .gitignore otherwise); None outside a checkout."""
    try:
        listed = subprocess.run(
            [*GIT_NEW_FILES, "--", ".", ":(exclude).venv"],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if listed.returncode != 0:
        return None
    return {
        line[3:]
        for line in listed.stdout.splitlines()
        if line[:2] in {"??", "!!"} and "__pycache__/" not in line and ".pytest_cache/" not in line
    }


def pytest_sessionfinish(session, exitstatus):
    """No test writes into the source tree: the run fails if a file appeared in it."""
    before = getattr(session.config, "source_tree_before", None)
    if before is None:
        return
    written = sorted((source_tree_files() or set()) - before)
    if written:
        session.config.source_tree_written = written
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for path in getattr(config, "source_tree_written", []):
        terminalreporter.write_line(f"The tests wrote into the source tree: {path}", red=True)


@pytest.fixture(scope="session", autouse=True)
def _redis_is_reachable():
    """Fail the run, loudly, when Redis does not answer: never skip."""
    redis_client().ping()


@pytest.fixture(scope="session", autouse=True)
def _flush_by_delete():
    """After each transactional test Django empties every table with one TRUNCATE, which makes new
    files for each table and index: most of a second on a busy disk, hundreds of times a run.
    The suite's tables hold a few rows, so DELETE empties them in milliseconds; the foreign keys
    Django makes are deferred to the commit, so the order does not matter. A test that asks for
    its sequences reset still gets TRUNCATE … RESTART IDENTITY."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    truncate = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        if reset_sequences or allow_cascade:
            return truncate(
                self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        deletes = [f"DELETE FROM {self.quote_name(table)}" for table in tables]
        return ["SET CONSTRAINTS ALL DEFERRED", *deletes] if deletes else []

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = truncate


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache (the test Redis database is the suite's own)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _full_password_hash_budget():
    """Each test starts with the process's budget of password hashes full, as a new worker does
    (LOGIN_PROCESS_HASH_RATE): the suite checks passwords faster than any one person would."""
    from apps.twofactor.login_limits import process_hashes

    process_hashes.cache_clear()


class LogLines:
    """What the project's stdout handler wrote, parsed line by line."""

    def __init__(self, stream: io.StringIO):
        self.stream = stream

    def __call__(self, **match) -> list[dict]:
        """The records written so far that have every given field with its value."""
        records = [json.loads(line) for line in self.stream.getvalue().splitlines()]
        return [r for r in records if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    """The JSON lines the project logs during the test (its stdout handler, redirected)."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "stdout")
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield LogLines(stream)
    handler.setStream(previous)


@pytest.fixture
def dead_redis_url() -> str:
    """A Redis URL where nothing listens: every connection is refused at once."""
    return f"redis://127.0.0.1:{free_port()}/{redis_db()}"


@pytest.fixture
def redis_down(settings, dead_redis_url) -> None:
    """The cache points at a Redis that refuses every connection, for this test."""
    settings.CACHES = cache_at(dead_redis_url)


@pytest.fixture
def staff_client(client, admin_user):
    """A client logged in as a superuser who can open every admin page.

    Admin tests use this fixture rather than `admin_client`, so that what the admin demands of
    staff (a second factor, for one) is satisfied in one place: the superuser has a confirmed
    TOTP device and the session is verified by it, as after logging in with a code.
    """
    from django_otp import DEVICE_ID_SESSION_KEY

    from apps.twofactor.models import SealedTOTPDevice

    device = SealedTOTPDevice.objects.create(user=admin_user, name="staff_client", confirmed=True)
    client.force_login(admin_user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


@dataclass
class OwnPostgres:
    """A migrated PostgreSQL cluster of the tests' own, with an API key: for servers whose
    database a test freezes."""

    cluster: PostgresCluster
    api_key: str

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment of a server on this cluster (every alias on its `dbapi` database).
        The API key stays cached, so that a call's first statement is its action's."""
        url = self.cluster.url()
        return project_env(
            DATABASE_URL=url, DATABASE_URL_REPORTING=url, API_KEY_CACHE_SECONDS="600", **overrides
        )

    def count(self, sql: str, params=()) -> int:
        with self.cluster.connect() as connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]


# The commands that ready a new cluster, in one process (each would set Django up again): the
# migrations, then a client whose key is printed alone on stdout, the project's logs on stderr.
MIGRATE_AND_CREATE_A_CLIENT = """
import io, sys
sys.stdout = sys.stderr
import django
django.setup()
from django.core.management import call_command
call_command("migrate", interactive=False, verbosity=0)
key = io.StringIO()
call_command("create_api_client", "outages", stdout=key)
print(key.getvalue().strip(), file=sys.__stdout__)
"""


@pytest.fixture(scope="session")
def own_postgres() -> Iterator[OwnPostgres]:
    """One cluster for the session (initdb and migrations take seconds); a test that freezes it
    thaws it before it ends (PostgresCluster.frozen)."""
    with postgres_cluster() as cluster:
        env = project_env(DATABASE_URL=cluster.url(), DATABASE_URL_REPORTING=cluster.url())
        key = subprocess.run(
            [sys.executable, "-c", MIGRATE_AND_CREATE_A_CLIENT],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        yield OwnPostgres(cluster=cluster, api_key=key)
