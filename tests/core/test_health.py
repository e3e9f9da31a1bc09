"""/health/live answers while the process is up; /health/ready fails only without a database,
and reports the caches."""

import json
import urllib.error
import urllib.request

import pytest
from django.conf import settings

from tests.servers import free_port, gunicorn, project_env


def test_live_answers_ok(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def every_check(**results: str) -> dict[str, str]:
    """The readiness checks: every configured database and cache, "ok" unless said otherwise."""
    checks = {f"database:{alias}": "ok" for alias in settings.DATABASES}
    checks.update({f"cache:{alias}": "ok" for alias in settings.CACHES})
    checks.update({name.replace("_", ":", 1): value for name, value in results.items()})
    return checks


@pytest.mark.django_db(databases="__all__")
def test_ready_checks_every_database_and_cache(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": every_check()}


def test_health_is_not_cached_by_proxies(client):
    assert "no-cache" in client.get("/health/live")["Cache-Control"]


def get(url, *, timeout: float = 10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.loads(error.read())


@pytest.mark.django_db(databases="__all__")
def test_ready_stays_200_and_reports_the_cache_unavailable_when_redis_is_down(client, redis_down):
    """Every page works without Redis: an outage must not take every pod out of service."""
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "degraded",
        "checks": every_check(cache_default="unavailable"),
    }


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_a_server_whose_redis_is_unreachable_is_still_ready():
    env = project_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    with gunicorn(env=env) as base_url:
        status, headers, body = get(f"{base_url}/health/ready")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body == {"status": "degraded", "checks": every_check(cache_default="unavailable")}


@pytest.mark.django_db(transaction=True, databases="__all__")
def test_ready_is_503_naming_the_database_when_postgres_is_unreachable():
    env = project_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/dbapi")
    with gunicorn(env=env) as base_url:
        status, _, body = get(f"{base_url}/health/ready")
        live_status, _, _ = get(f"{base_url}/health/live")
    assert status == 503
    assert body["checks"] == every_check(database_default="unavailable")
    assert "database:default" in body["detail"]
    assert live_status == 200


@pytest.mark.slow
def test_ready_gives_up_on_a_frozen_database_after_2_seconds(own_postgres):
    """The readiness probe (timeoutSeconds: 3) gets its 503 from a frozen database within
    HEALTH_DB_TIMEOUT (2 s), well before DB_TIMEOUT (10 s): the client waits as the probe does."""
    with gunicorn(env=own_postgres.env()) as base_url:
        assert get(f"{base_url}/health/ready")[0] == 200  # the worker holds a connection
        with own_postgres.cluster.frozen():
            status, _, body = get(f"{base_url}/health/ready", timeout=3)
        after, _, _ = get(f"{base_url}/health/ready")
    assert status == 503
    assert body["checks"]["database:default"] == "unavailable"
    assert "database:default" in body["detail"]
    assert after == 200
