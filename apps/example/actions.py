"""The example module: the pattern every module copies, one action for each kind of work.

POST /actions/example/foo      {"name": "ana", "email": "ana@example.com"}   no database
POST /actions/example/bar      {"name": "ana"}    a write and a read in one transaction
POST /actions/example/hello    {"name": "ana"}    calls the upstream service "flask"
POST /actions/example/numbers  {"count": 100000}  many rows: streamed (NDJSON, gRPC Stream)
POST /actions/example/wait     {"seconds": 0.1}   a statement under a 1-second timeout
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from apps.actions import Db, registry
from apps.core.upstreams import UpstreamError, upstream

from .serializers import (
    ExampleUserSerializer,
    HelloSerializer,
    NumbersSerializer,
    PersonSerializer,
    WaitSerializer,
)
from .sql import SQL_NUMBERS, SQL_USERS, SQL_WAIT

actions = registry.module("example")


@actions.action("foo", input=PersonSerializer)
def foo(name: str, email: str | None = None) -> dict[str, Any]:
    """Echo the name and email with the server's time; touches no database."""
    return {"name": name, "email": email, "time": timezone.now()}


@actions.action(
    "bar", input=PersonSerializer, output=ExampleUserSerializer(many=True), using="default"
)
def bar(db: Db, name: str, email: str | None = None) -> list[dict[str, Any]]:
    """Store the email for a name (insert or update), then return the rows for that name."""
    db.upsert("example_user", {"name": name, "email": email}, conflict=["name"])
    return db.fetch_all(SQL_USERS, {"name": name})


@actions.action("hello", input=HelloSerializer)
def hello(name: str) -> dict[str, Any]:
    """Ask the upstream service "flask" to greet the name (the original's `GET /hello/<name>`).

    Another service is reached by its name in settings (UPSTREAM_FLASK_URL), never by a URL in
    code. When it is down or too slow the call answers 502 or 504 (UpstreamError).
    """
    response = upstream("flask").get(f"/hello/{quote(name, safe='')}")
    if response.is_error:  # 5xx never gets here: upstream() raises UpstreamError for them
        raise UpstreamError(f"The upstream service 'flask' answered {response.status_code}.")
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return {"name": name, "answer": response.text}
    try:
        return {"name": name, "answer": response.json()}
    except ValueError:  # its fault, not ours: a 502, like any other broken answer
        raise UpstreamError("The upstream service 'flask' answered invalid JSON.") from None


@actions.action("numbers", input=NumbersSerializer, using="default")
def numbers(db: Db, count: int) -> Iterator[dict[str, Any]]:
    """Rows 1..count from a server-side cursor, read as they are sent.

    Asked for NDJSON (`Accept: application/x-ndjson`) or over gRPC's `Stream`, each row is sent
    as it is read, so the rows never sit in memory together; otherwise they are collected into
    one JSON array.
    """
    return db.iterate(SQL_NUMBERS, {"count": count})


@actions.action("wait", input=WaitSerializer, using="default", timeout=1)
def wait(db: Db, seconds: float) -> dict[str, Any]:
    """Sleep in the database for `seconds`: past the action's 1-second timeout, PostgreSQL
    cancels the statement and the call answers 504, rolled back."""
    db.execute(SQL_WAIT, {"seconds": seconds})
    return {"slept": seconds}
