"""An action module used only by the tests: actions that fail in each way an action can."""

from __future__ import annotations

from rest_framework import serializers

from apps.actions import Db, registry

actions = registry.module("testing")


class NameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class EmptySerializer(serializers.Serializer):
    pass


@actions.action("duplicate_after_insert", input=NameSerializer, using="default")
def duplicate_after_insert(db: Db, name: str):
    """Insert `name`, then insert it again: the unique violation must undo the first insert."""
    db.insert("example_user", {"name": name})
    db.insert("example_user", {"name": name})


@actions.action("crash_after_insert", input=NameSerializer, using="default")
def crash_after_insert(db: Db, name: str):
    db.insert("example_user", {"name": name})
    raise RuntimeError("secret internal detail")


@actions.action("refuse_after_insert", input=NameSerializer, using="default")
def refuse_after_insert(db: Db, name: str):
    """A business rule raised as a validation error, after a write that must be undone."""
    db.insert("example_user", {"name": name})
    raise serializers.ValidationError({"name": ["This name is reserved."]})


@actions.action("types", input=EmptySerializer, using="default")
def types(db: Db):
    """A row holding the PostgreSQL types an action may return."""
    return db.fetch_one(
        """
        SELECT TIMESTAMPTZ '2026-11-26 10:30:00.123456+00' AS ts,
               DATE '2026-11-26' AS day,
               TIME '12:30:15' AS clock,
               NUMERIC '12345678901234567890.000000001' AS big,
               UUID 'a8098c1a-f86e-11da-bd1a-00112444be1e' AS id,
               BYTEA '\\x00ff10' AS raw,
               INTERVAL '1 day 2 hours' AS span,
               int4range(1, 5) AS range,
               ARRAY[1, 2, 3] AS numbers,
               '{"a": [1, 2]}'::jsonb AS doc,
               NULL::text AS nothing,
               TRUE AS yes,
               1.5::float8 AS ratio
        """
    )


@actions.action("rows", input=EmptySerializer, using="default")
def rows(db: Db):
    """Rows from a server-side cursor: an iterator, read to the end inside the transaction."""
    return db.iterate("SELECT n FROM generate_series(1, 5) AS n")


@actions.action("reporting_insert", input=NameSerializer, using="reporting")
def reporting_insert(db: Db, name: str):
    """Runs on the `reporting` database (DATABASE_URL_REPORTING), not on `default`."""
    db.insert("example_user", {"name": name})
    if name == "fail":
        raise RuntimeError("undo the insert on reporting")
    return db.fetch_value("SELECT count(*) FROM example_user")


class SlowInsertSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    seconds = serializers.FloatField(min_value=0, max_value=5, default=0)


@actions.action("slow_insert", input=SlowInsertSerializer, using="default")
def slow_insert(db: Db, name: str, seconds: float):
    """Insert a row, then hold the transaction open: each run leaves one row."""
    db.insert("example_user", {"name": name})
    db.execute("SELECT pg_sleep(%s)", [seconds])
    return {"name": name}


class LongSleepSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    seconds = serializers.FloatField(min_value=0, max_value=60)


@actions.action("sleep_long", input=LongSleepSerializer, using="default", timeout=30)
def sleep_long(db: Db, name: str, seconds: float):
    """A statement far longer than a caller may wait, under a long timeout of its own."""
    db.execute("SELECT pg_sleep(%s)", [seconds])
    return {"name": name}


@actions.action("rows_then_fail", input=EmptySerializer, using="default")
def rows_then_fail(db: Db):
    """Two rows, then a failure in the middle of reading: a stream cut short."""
    yield {"n": 1}
    yield {"n": 2}
    raise RuntimeError("the cursor broke after two rows")


@actions.action("slow_rows", input=SlowInsertSerializer, using="default")
def slow_rows(db: Db, name: str, seconds: float):
    """Rows read from a server-side cursor as the first statement, after a wait."""
    return list(db.iterate("SELECT %s AS name, pg_sleep(%s) AS slept", [name, seconds]))
