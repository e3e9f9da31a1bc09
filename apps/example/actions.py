"""The example module: the original server's two actions, the pattern every module copies.

POST /actions/example/foo  {"name": "ana", "email": "ana@example.com"}
POST /actions/example/bar  {"name": "ana"}
"""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from apps.actions import Db, registry

from .serializers import BarSerializer, ExampleUserSerializer, FooSerializer
from .sql import SQL_USERS

actions = registry.module("example")


@actions.action("foo", input=FooSerializer)
def foo(name: str, email: str | None = None) -> dict[str, Any]:
    """Echo the name and email with the server's time; touches no database."""
    return {"name": name, "email": email, "time": timezone.now()}


@actions.action(
    "bar", input=BarSerializer, output=ExampleUserSerializer(many=True), using="default"
)
def bar(db: Db, name: str, email: str | None = None) -> list[dict[str, Any]]:
    """Store the email for a name (insert or update), then return the rows for that name."""
    db.upsert("example_user", {"name": name, "email": email}, conflict=["name"])
    return db.fetch_all(SQL_USERS, {"name": name})
