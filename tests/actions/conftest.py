"""Fixtures for calling actions over HTTP with a real API key."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from tests.actions import testing_module  # noqa: F401  (registers the "testing" module)


class ActionCaller:
    """Posts to /actions/… the way a calling service does."""

    def __init__(self, client, key: str | None):
        self.client = client
        self.key = key

    def __call__(self, path: str, body=None, *, key: str | None = "default", **extra):
        key = self.key if key == "default" else key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        headers.update(extra.pop("headers", {}))
        data = body if isinstance(body, str | bytes) else json.dumps({} if body is None else body)
        content_type = extra.pop("content_type", "application/json")
        return self.client.generic(
            "POST",
            f"/actions/{path}",
            data,
            content_type=content_type,
            headers=headers,
            CONTENT_TYPE=content_type,  # the test client drops it when the body is empty
            **extra,
        )


@pytest.fixture
def api_key(db) -> str:
    _, key = create_api_client(name="calling-service")
    return key


@pytest.fixture
def api_key_value(transactional_db) -> str:
    """A key for tests whose calls commit (servers, the WSGI fast path)."""
    _, key = create_api_client(name="calling-service")
    return key


@pytest.fixture
def call(client, api_key) -> ActionCaller:
    return ActionCaller(client, api_key)


@pytest.fixture
def example_rows(db):
    """The example table's rows now: compare before and after to show nothing changed."""

    def snapshot() -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name, email FROM example_user ORDER BY id")
            return cursor.fetchall()

    return snapshot
