"""Actions used only by the gRPC tests: slow ones, rows whose reading can be watched, and a
stream that writes before it sends."""

from __future__ import annotations

from rest_framework import serializers

from apps.actions import Db, registry

actions = registry.module("rpc_testing")

# A sequence the `counted` rows advance as PostgreSQL produces them (created by the tests).
SEQUENCE = "rpc_testing_rows"
SQL_COUNTED = """
    SELECT n, nextval('rpc_testing_rows') AS taken FROM generate_series(1, %(count)s) AS n
"""


class CountSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1)


class SecondsSerializer(serializers.Serializer):
    seconds = serializers.FloatField(min_value=0, max_value=10)


@actions.action("counted", input=CountSerializer, using="default")
def counted(db: Db, count: int):
    """Rows from a server-side cursor, each taking a number from a sequence when it is read:
    another session sees from the sequence how far PostgreSQL has got."""
    return db.iterate(SQL_COUNTED, {"count": count})


@actions.action("sleep", input=SecondsSerializer, using="default")
def sleep(db: Db, seconds: float):
    """Hold a worker and a connection for a while, as a slow query does."""
    db.execute("SELECT pg_sleep(%(seconds)s)", {"seconds": seconds})
    return {"slept": seconds}


class EmptySerializer(serializers.Serializer):
    pass


@actions.action("backend", input=EmptySerializer, using="default")
def backend(db: Db):
    """The PostgreSQL backend serving this call's connection: the same one while it is kept."""
    return db.fetch_value("SELECT pg_backend_pid()")


class InsertThenRowsSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    count = serializers.IntegerField(min_value=1)


@actions.action("insert_then_rows", input=InsertThenRowsSerializer, using="default")
def insert_then_rows(db: Db, name: str, count: int):
    """Insert `name` into example_user, then send `count` rows of a kilobyte each: the insert
    is committed only if every row is sent, and a client that stops reading fills the window."""
    db.insert("example_user", {"name": name})
    return db.iterate(
        "SELECT n, repeat('x', 1000) AS filler FROM generate_series(1, %(count)s) AS n",
        {"count": count},
    )


class SlowRowsSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=10)
    seconds = serializers.FloatField(min_value=0, max_value=10)


@actions.action("slow_rows", input=SlowRowsSerializer, using="default")
def slow_rows(db: Db, count: int, seconds: float):
    """Rows that each take a query of `seconds` to produce: a stream slow on the server's side."""
    for n in range(1, count + 1):
        db.execute("SELECT pg_sleep(%(seconds)s)", {"seconds": seconds})
        yield {"n": n}
