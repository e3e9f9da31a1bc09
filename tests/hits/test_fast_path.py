"""GET / under gunicorn takes the WSGI fast path (config/wsgi.py): the answers of Django's whole
stack, exact counts from several processes, JSON logs and problems when things fail."""

from __future__ import annotations

import functools
import io
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.db import connection
from django.test import RequestFactory

from apps.core.wsgi import FastPaths
from apps.hits.models import HitCounter
from apps.hits.wsgi import HitsRoute
from tests.hits.conftest import in_background, in_threads
from tests.servers import (
    PROJECT_DIR,
    cache_at,
    call_wsgi,
    free_port,
    gunicorn,
    project_env,
    stop,
    wait_until,
)

# The fast path and Django share the database connection's signals (request_finished closes it
# when obsolete), which a test transaction would not survive: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)


def fast_path(application):
    return FastPaths(application, [HitsRoute()])


def same_answers(environ_for) -> tuple[tuple, tuple]:
    """Django's answer, then the fast path's, to the same request (counting two hits)."""
    django = call_wsgi(WSGIHandler(), environ_for())
    fast = call_wsgi(fast_path(WSGIHandler()), environ_for())
    return django, fast


def without_the_count(body: bytes) -> bytes:
    return re.sub(rb"\d+", b"N", body)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Accept": "application/json"},
        {"Accept": "text/html"},
        {"Accept": "text/html", "Accept-Language": "es-ES,es;q=0.9"},
    ],
    ids=["any", "json", "browser", "spanish-browser"],
)
def test_the_fast_path_answers_what_django_answers(headers):
    def environ():
        return RequestFactory().get("/", headers={"X-Request-ID": "same-1", **headers}).environ

    (status, django_headers, django_body), (fast_status, fast_headers, fast_body) = same_answers(
        environ
    )
    assert status == fast_status == "200 OK"
    assert fast_headers == django_headers
    assert without_the_count(fast_body) == without_the_count(django_body)
    assert django_body != fast_body  # two hits were counted


def test_the_fast_path_sets_the_security_headers_django_sets_over_https(settings):
    settings.SECURE_HSTS_SECONDS = 3600

    def environ():
        headers = {"X-Request-ID": "same-2", "X-Forwarded-Proto": "https"}
        return RequestFactory().get("/", headers=headers).environ

    (_, django_headers, _), (_, fast_headers, _) = same_answers(environ)
    assert fast_headers == django_headers
    assert fast_headers["Strict-Transport-Security"] == "max-age=3600"


def test_the_fast_path_redirects_to_https_as_django_does(settings):
    settings.SECURE_SSL_REDIRECT = True

    def environ():
        return RequestFactory().get("/", headers={"X-Request-ID": "same-3"}).environ

    django, fast = same_answers(environ)
    assert fast == django
    assert fast[0] == "301 Moved Permanently"
    assert fast[1]["Location"] == "https://testserver/"
    assert not HitCounter.objects.exists()  # nothing counted


def test_the_fast_path_refuses_a_host_that_is_not_allowed_as_django_does():
    def environ():
        headers = {"X-Request-ID": "same-4", "Host": "evil.example"}
        return RequestFactory().get("/", headers=headers).environ

    django, fast = same_answers(environ)
    assert fast == django
    assert fast[0] == "400 Bad Request"
    assert fast[1]["Content-Type"] == "application/problem+json"


def test_the_fast_path_counts_into_the_database_when_redis_is_down(settings, dead_redis_url):
    settings.CACHES = cache_at(dead_redis_url)
    environ = RequestFactory().get("/", headers={"X-Request-ID": "down-0"}).environ
    status, headers, body = call_wsgi(fast_path(WSGIHandler()), environ)
    assert (status, body, headers["X-Request-ID"]) == ("200 OK", b"Hits: 1", "down-0")
    assert HitCounter.objects.get(name="root").total == 1


def test_the_fast_path_passes_every_other_request_to_django():
    application = fast_path(WSGIHandler())
    live = call_wsgi(application, RequestFactory().get("/health/live").environ)
    assert (live[0], json.loads(live[2])) == ("200 OK", {"status": "ok"})
    post = call_wsgi(
        application, RequestFactory().post("/", headers={"X-Request-ID": "p-1"}).environ
    )
    assert post[0] == "405 Method Not Allowed"
    assert post[1]["Content-Type"] == "application/problem+json"
    assert post[1]["X-Request-ID"] == "p-1"


def test_the_fast_path_closes_a_database_connection_past_its_age_as_django_does(
    settings, dead_redis_url
):
    settings.CACHES = cache_at(dead_redis_url)  # so that the hit uses the database
    application = fast_path(WSGIHandler())
    call_wsgi(application, RequestFactory().get("/").environ)
    kept = connection.connection
    assert kept is not None  # kept for the next request (CONN_MAX_AGE)
    call_wsgi(application, RequestFactory().get("/").environ)
    assert connection.connection is kept
    connection.close_at = time.monotonic() - 1
    call_wsgi(application, RequestFactory().get("/").environ)
    assert kept.closed  # past its age: replaced, as Django's request signals would


def test_the_fast_path_accounts_for_every_middleware_in_the_settings():
    fast_path(WSGIHandler())  # does not raise


def test_a_middleware_the_fast_path_does_not_know_stops_the_start_up(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.gzip.GZipMiddleware"]
    with pytest.raises(ImproperlyConfigured, match=r"GZipMiddleware.*HITS_FAST_PATH=false"):
        fast_path(WSGIHandler())


# --- Under gunicorn -------------------------------------------------------------------------------


def get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def hits(url: str) -> int:
    status, _, body = get(f"{url}/", Accept="application/json")
    assert status == 200
    return json.loads(body)["hits"]


def flush() -> None:
    call_command("flush_hits", stdout=io.StringIO())


@pytest.mark.slow
@pytest.mark.parametrize("fast_path", ["true", "false"], ids=["fast-path", "whole-stack"])
def test_exactly_n_hits_from_several_gunicorn_workers(fast_path):
    per_thread, threads = 25, 8
    with gunicorn(env=project_env(HITS_FAST_PATH=fast_path), workers=2) as url:
        shown = in_threads(lambda: [hits(url) for _ in range(per_thread)], count=threads)
    assert sorted(total for totals in shown for total in totals) == list(
        range(1, per_thread * threads + 1)
    )
    flush()
    assert HitCounter.objects.get(name="root").total == per_thread * threads


# A flush process: it sets Django up, says so, then runs the flush_hits command each time a line
# comes on its stdin and prints what the command wrote. Set up before the count starts, both
# flush at the moment the test says, while the workers count, at the same time as each other.
FLUSHER = """
import io, sys
answers, sys.stdout = sys.stdout, sys.stderr  # what the project logs, away from the answers
import django
django.setup()
from django.core.management import call_command
print("ready", file=answers, flush=True)
for _ in sys.stdin:
    out = io.StringIO()
    call_command("flush_hits", stdout=out)
    print(out.getvalue().strip(), file=answers, flush=True)
"""


@pytest.mark.slow
def test_flush_processes_running_at_once_while_workers_count_persist_each_hit_once():
    per_thread, threads = 40, 6
    counting = threading.Event()
    counting.set()
    shown: list[list[int]] = [[] for _ in range(threads)]

    def count(url: str, totals: list[int]) -> None:
        while counting.is_set() or len(totals) < per_thread:
            totals.append(hits(url))

    flushers = [
        subprocess.Popen(
            [sys.executable, "-c", FLUSHER],
            cwd=PROJECT_DIR,
            env=project_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        assert [f.stdout.readline() for f in flushers] == ["ready\n", "ready\n"]
        with gunicorn(workers=2) as url:
            hits(url)  # the counter exists before the flushes start
            counters = [in_background(functools.partial(count, url, totals)) for totals in shown]
            wait_until(lambda: all(shown), timeout=30)  # every thread is counting
            flushed = []
            for _ in range(2):  # both processes flush at once, twice, while the workers count
                for flusher in flushers:
                    flusher.stdin.write("flush\n")
                    flusher.stdin.flush()
                flushed += [flusher.stdout.readline() for flusher in flushers]
            counting.clear()
            for counter in counters:
                counter.result(60)
    finally:
        for flusher in flushers:
            stop(flusher)
    assert all(line.startswith("Flushed ") for line in flushed), flushed
    flush()
    expected = sum(len(totals) for totals in shown) + 1
    assert sorted(total for totals in shown for total in totals) == list(range(2, expected + 1))
    assert HitCounter.objects.get(name="root").total == expected


def test_under_gunicorn_a_dead_redis_is_logged_as_json_with_the_request_id(
    tmp_path, dead_redis_url
):
    log = tmp_path / "gunicorn.log"
    with (
        log.open("w") as stdout,
        gunicorn(env=project_env(REDIS_URL=dead_redis_url), stdout=stdout) as url,
    ):
        status, headers, body = get(f"{url}/", **{"X-Request-ID": "dead-redis-1"})
    assert (status, body, headers["X-Request-ID"]) == (200, b"Hits: 1", "dead-redis-1")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [warning] = [r for r in records if r["logger"] == "apps.core.cache"]
    assert warning["request_id"] == "dead-redis-1"
    assert HitCounter.objects.get(name="root").total == 1


@pytest.mark.without_database_url  # a port where nothing listens
def test_under_gunicorn_without_redis_and_database_root_is_a_503_problem(tmp_path, dead_redis_url):
    log = tmp_path / "gunicorn.log"
    env = project_env(
        DEBUG="false",  # Django's debug page would show the traceback, by design
        REDIS_URL=dead_redis_url,
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nothing",
    )
    with log.open("w") as stdout, gunicorn(env=env, stdout=stdout) as url:
        status, headers, body = get(f"{url}/", **{"X-Request-ID": "all-down-1"})
    assert status == 503
    assert headers["Retry-After"]
    assert headers["Content-Type"] == "application/problem+json"
    assert headers["X-Request-ID"] == "all-down-1"
    problem = json.loads(body)
    assert problem["request_id"] == "all-down-1"
    assert "Traceback" not in body.decode()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [error] = [r for r in records if r["level"] == "ERROR" and "exc_info" in r]
    assert error["request_id"] == "all-down-1"
    assert "OperationalError" in error["exc_info"]
