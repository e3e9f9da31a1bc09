"""When PostgreSQL does not answer, calls get a 503 problem to retry, not a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from tests.servers import free_port, gunicorn, project_env


def post(url: str, body: dict, key: str):
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


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
