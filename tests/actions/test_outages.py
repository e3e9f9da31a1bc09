"""When PostgreSQL does not answer, calls get a 503 problem to retry, not a 500."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from tests.actions.conftest import ActionCaller
from tests.servers import children, database_url, free_port, gunicorn, project_env
from tests.servers import post_action as post

# Longer than any wait the server may make with DB_TIMEOUT=2, far shorter than gunicorn's worker
# timeout (30 s): an answer that does not come before it is the outage this guards against.
CLIENT_TIMEOUT = 20
# How long a client waits for the 503 of a frozen database: DB_TIMEOUT (2 s in these tests, and
# HEALTH_DB_TIMEOUT for readiness) and slack for a loaded machine, well short of what a wait
# past DB_TIMEOUT (a probe after it) would take. A bound on a wait: the answer must come within.
WITHIN_DB_TIMEOUT = 2 + 1.5


@pytest.mark.without_database_url  # a port where nothing listens
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_an_action_with_the_database_down_is_503_with_retry_after():
    _, key = create_api_client(name="during-outage")
    env = project_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/dbapi")
    with gunicorn(env=env) as base_url:
        status, headers, body = post(f"{base_url}/actions/example/bar", {"name": "ana"}, key)
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["Retry-After"] == "5"
    assert body["detail"].startswith("The database is unavailable; nothing was changed.")
    assert body["request_id"] == headers["X-Request-ID"]


def terminate_other_connections() -> int:
    """What a database restart does to the connections the server keeps: ends them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("health_checks", "after_the_restart"),
    [("false", [503, 200]), ("true", [200, 200])],
    ids=["without-health-checks", "with-health-checks"],
)
@pytest.mark.django_db(transaction=True, databases="__all__")
def test_after_a_database_restart_a_kept_connection_is_replaced(health_checks, after_the_restart):
    """Without health checks (the default), the first call on a connection the restart ended
    answers 503, to be retried, and the connection is replaced; with them, none fails."""
    _, key = create_api_client(name="across-restart")
    env = project_env(DB_CONN_HEALTH_CHECKS=health_checks)
    with gunicorn(env=env) as base_url:
        assert post(f"{base_url}/actions/example/bar", {"name": "ana"}, key)[0] == 200
        assert terminate_other_connections() >= 1
        statuses = [post(f"{base_url}/actions/example/bar", {"name": "ana"}, key)[0] for _ in "ab"]
    assert statuses == after_the_restart


def get(url: str, *, timeout: float = 15):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


def workers(pid_file) -> list[int]:
    return children(int(pid_file.read_text()))


@pytest.mark.slow
@pytest.mark.without_database_url  # a cluster of the tests' own, which it freezes
@pytest.mark.parametrize("health_checks", ["false", "true"], ids=["kept", "health-checked"])
def test_frozen_database_answers_503_within_timeout(own_postgres, health_checks, tmp_path):
    """Both workers hold a connection when every PostgreSQL process stops: each call and the
    readiness probe get a 503 problem within DB_TIMEOUT, instead of a worker killed after
    gunicorn's timeout,
    nothing is committed, and the first call after the database resumes succeeds."""
    key = own_postgres.api_key
    pid_file = tmp_path / "gunicorn.pid"
    env = own_postgres.env(DB_TIMEOUT="2", DB_CONN_HEALTH_CHECKS=health_checks)
    with gunicorn(env=env, workers=2, args=("--pid", str(pid_file))) as base_url:
        bar = f"{base_url}/actions/example/bar"
        with ThreadPoolExecutor(max_workers=4) as pool:
            # Calls two at a time, so that each worker opens its connection.
            for _ in range(4):
                warm = pool.map(lambda _: post(bar, {"name": "warm"}, key), range(2))
                assert [status for status, _, _ in warm] == [200, 200]
            serving = workers(pid_file)
            with own_postgres.cluster.frozen():
                calls = [
                    pool.submit(post, bar, {"name": f"frozen-{n}"}, key, timeout=WITHIN_DB_TIMEOUT)
                    for n in range(2)
                ]
                answers = [call.result() for call in calls]
                # Then the readiness probe, on a worker free again.
                ready_status, _, ready_body = get(
                    f"{base_url}/health/ready", timeout=WITHIN_DB_TIMEOUT
                )
        after = post(bar, {"name": "after"}, key)
        still_serving = workers(pid_file)
    for status, headers, body in answers:
        assert status == 503, body
        assert headers["Content-Type"] == "application/problem+json"
        assert headers["Retry-After"] == "5"
        assert body["detail"].startswith("The database is unavailable; nothing was changed.")
        assert body["request_id"] == headers["X-Request-ID"]
    assert ready_status == 503
    assert ready_body["checks"]["database:default"] == "unavailable"
    assert still_serving == serving  # no worker was killed
    assert after[0] == 200
    assert own_postgres.count("SELECT count(*) FROM example_user WHERE name LIKE 'frozen-%%'") == 0


# --- A live server that keeps a statement silent ------------------------------------------------


def backends_busy_with(fragment: str) -> int:
    """Other sessions of the test database running a statement that contains `fragment`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE %s",
            [f"%{fragment}%"],
        )
        return cursor.fetchone()[0]


def wait_until_no_backend_is_busy_with(fragment: str, timeout: float = 20) -> None:
    """Until the server has finished with a statement whose client gave up on it."""
    deadline = time.monotonic() + timeout
    while backends_busy_with(fragment):
        if time.monotonic() > deadline:
            raise TimeoutError(f"a backend is still running {fragment!r}")
        time.sleep(0.05)


@contextlib.contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Another session holds an exclusive lock on `table` inside the block (released after
    20 s at the latest, so that a call that waits for it cannot hang the test)."""
    holder = psycopg2.connect(database_url())
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        safety = threading.Timer(20, holder.rollback)
        safety.start()
        try:
            yield
        finally:
            safety.cancel()
            holder.rollback()
    finally:
        holder.close()


@pytest.mark.django_db(transaction=True)
def test_a_lock_that_never_comes_answers_503_within_timeout(client, api_key_value, settings):
    """The server answers, but the call's statement waits for a lock another session holds:
    after DB_TIMEOUT the call is a 503, its transaction is rolled back, and the next call works."""
    settings.DB_TIMEOUT = 1
    call = ActionCaller(client, api_key_value)
    with table_locked("example_user"):
        locked = call("example/bar", {"name": "behind-a-lock"})
    wait_until_no_backend_is_busy_with("INSERT INTO")  # the given-up statement, run and undone
    after = call("example/bar", {"name": "after-the-lock"})
    assert locked.status_code == 503
    assert locked["Retry-After"] == "5"
    assert locked.json()["detail"].startswith("The database is unavailable; nothing was changed.")
    assert after.status_code == 200
    assert example_names() == ["after-the-lock"]


@pytest.mark.django_db(transaction=True)
def test_a_statement_within_its_actions_timeout_is_waited_for_past_db_timeout(
    client, api_key_value, settings
):
    """Silent for longer than DB_TIMEOUT, but within its action's timeout (30 s) on a server
    that answers the probes: not a 503."""
    settings.DB_TIMEOUT = 0.5
    call = ActionCaller(client, api_key_value)
    response = call("testing/sleep_long", {"name": "patient", "seconds": 2})
    assert response.status_code == 200, response.content
    assert response.json() == {"name": "patient"}


@pytest.fixture
def slow_commit(transactional_db):
    """Committing a row named `slow-commit` into example_user takes 3 s (a deferred trigger)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION outage_slow_commit() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(3); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER outage_slow_commit AFTER INSERT ON example_user "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.name = 'slow-commit') "
            "EXECUTE FUNCTION outage_slow_commit()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER outage_slow_commit ON example_user")
        cursor.execute("DROP FUNCTION outage_slow_commit()")


def test_a_commit_given_up_on_does_not_claim_nothing_changed(
    client, api_key_value, settings, slow_commit
):
    """Given up on after the COMMIT was sent, the call is a 503 all the same, but one that says
    the change may have been made: here the server goes on to commit it."""
    settings.DB_TIMEOUT = 1
    response = ActionCaller(client, api_key_value)("example/bar", {"name": "slow-commit"})
    wait_until_no_backend_is_busy_with("COMMIT")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["detail"] == (
        "The database stopped answering after the change was sent: it may or may not have been "
        "made. Check before trying again."
    )
    assert example_names() == ["slow-commit"]


def example_names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY id")
        return [name for (name,) in cursor.fetchall()]
