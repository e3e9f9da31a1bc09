"""Idempotency-Key: a call made again with the same key gets the first answer, and runs once.

The answer (status and body) is kept in the same transaction as the call's own writes, on the
same database, so a retry after a lost answer finds either both or neither. While the first call
runs, the key's advisory lock (PostgreSQL, transaction-scoped) makes a repeat answer 409 at once
rather than run again or wait; the same key with another call is a 422. A call that fails keeps
nothing, so its retry runs. Answers are kept ACTIONS_IDEMPOTENCY_SECONDS per API client and key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections

from apps.core.json import JSONEncoder
from apps.core.problems import Problem

from . import sql

# 1 to 255 printable ASCII characters.
KEY = re.compile(r"[\x20-\x7e]{1,255}")
_canonical = JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class InvalidIdempotencyKey(Problem):
    status_code = 400
    default_detail = "An Idempotency-Key is 1 to 255 printable ASCII characters."
    type_slug = "invalid-idempotency-key"


class IdempotencyKeyReused(Problem):
    status_code = 422
    default_detail = (
        "This Idempotency-Key was used for another call (another action or input): use a new key."
    )
    type_slug = "idempotency-key-reused"


class IdempotencyInFlight(Problem):
    status_code = 409
    default_detail = (
        "A call with this Idempotency-Key is still running: retry shortly to get its answer."
    )
    type_slug = "idempotency-key-in-flight"
    headers = {"Retry-After": "1"}


@dataclass(frozen=True)
class Kept:
    """An answer kept for a key: what a repeat of the call gets."""

    status: int
    body: bytes


def parse_key(value: str | None) -> str | None:
    """The key a client sent (None for no key); 400 when it is not 1 to 255 printable ASCII."""
    if value is None:
        return None
    if not KEY.fullmatch(value):
        raise InvalidIdempotencyKey()
    return value


def fingerprint(call: Any) -> str:
    """What identifies a call for its key: the digest of its canonical JSON (sorted keys)."""
    return hashlib.sha256(_canonical.encode(call).encode()).hexdigest()


def claim(*, using: str, client_id: int, key: str, digest: str, now: datetime) -> Kept | None:
    """Inside the call's transaction on `using`: the kept answer when the call was made before
    (None: run it); 409 while another call with the key runs, 422 for another call's key."""
    connection = connections[using]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql.SQL_CLAIM_KEY_LOCKED, [_lock_id(client_id, key), client_id, key])
        else:
            cursor.execute(sql.SQL_CLAIM_KEY, [client_id, key])
        row = cursor.fetchone()
    if row is None:
        return None
    locked, kept_print, status, body, expires_at = row
    if not locked:
        raise IdempotencyInFlight()
    if kept_print is None or _expired(connection, expires_at, now):
        return None
    if kept_print != digest:
        raise IdempotencyKeyReused()
    return Kept(status=status, body=bytes(body))


def keep(
    *, using: str, client_id: int, key: str, digest: str, status: int, body: bytes, now: datetime
) -> None:
    """Inside the call's transaction on `using`: keep its answer for the key."""
    connection = connections[using]
    adapt = connection.ops.adapt_datetimefield_value
    expires = now + timedelta(seconds=settings.ACTIONS_IDEMPOTENCY_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL_STORE_ANSWER,
            [client_id, key, digest, status, body, adapt(now), adapt(expires)],
        )
        if cursor.fetchone() is None:  # a call with the key finished while this one ran
            raise IdempotencyInFlight()


def prune(*, using: str, now: datetime) -> int:
    """Drop the answers kept past their time on one database; returns how many."""
    connection = connections[using]
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL_PRUNE_ANSWERS, [connection.ops.adapt_datetimefield_value(now)])
        return cursor.rowcount


def _lock_id(client_id: int, key: str) -> int:
    """The advisory lock of a client's key: 64 bits of its digest, as PostgreSQL's bigint."""
    digest = hashlib.sha256(f"{client_id}\x00{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _expired(connection, expires_at: Any, now: datetime) -> bool:
    if isinstance(expires_at, str):  # SQLite gives text back from raw SQL
        expires_at = connection.ops.convert_datetimefield_value(expires_at, None, connection)
    return expires_at <= now
