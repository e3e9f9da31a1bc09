"""When PostgreSQL does not answer, calls get a 503 problem to retry, not a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from apps.accounts.api_keys import create_api_client
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
