"""Baseline for `POST /actions/example/bar`: the same durable work with nothing around it.

Look the caller's key up in Redis (the one GET the project's cached key check makes), parse the
JSON body, then in one transaction on a persistent psycopg2 connection: the upsert and the
select `bar` runs, and answer the rows as JSON.
"""

import hashlib
import json
import os
from urllib.parse import urlsplit

import psycopg2
import redis

UPSERT = (
    'INSERT INTO "example_user" ("name", "email") VALUES (%s, %s) '
    'ON CONFLICT ("name") DO UPDATE SET "email" = EXCLUDED."email" RETURNING *'
)
SELECT = "SELECT id, name, email, created_at FROM example_user WHERE name = %s ORDER BY id"

_url = urlsplit(os.environ["DATABASE_URL"])
_connection = psycopg2.connect(
    host=_url.hostname,
    port=_url.port or 5432,
    user=_url.username,
    password=_url.password,
    dbname=_url.path.lstrip("/"),
)


_redis = redis.Redis.from_url(os.environ["REDIS_URL"])
_key_prefix = f"{os.environ.get('CACHE_KEY_PREFIX', 'dbapi')}:1:apiclient:"


def application(environ, start_response):
    key = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ")
    _redis.get(_key_prefix + hashlib.sha256(key.encode()).hexdigest())
    length = int(environ.get("CONTENT_LENGTH") or 0)
    payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
    name, email = payload.get("name", "x"), payload.get("email")
    with _connection, _connection.cursor() as cursor:  # one transaction, committed on exit
        cursor.execute(UPSERT, [name, email])
        cursor.fetchone()
        cursor.execute(SELECT, [name])
        rows = [
            {"id": r[0], "name": r[1], "email": r[2], "created_at": r[3].isoformat()}
            for r in cursor.fetchall()
        ]
    body = json.dumps(rows).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
