"""Baseline for the hits scenario: one redis-py INCR per request on a persistent connection, and
the original's answer. No framework, no fallback, no request id."""

import os

import redis

client = redis.Redis.from_url(os.environ["REDIS_URL"])


def application(environ, start_response):
    body = b"Hits: %d" % client.incr("bench:baseline:hits")
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
