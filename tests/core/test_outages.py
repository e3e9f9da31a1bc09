"""A database that stops answering, for the pages and for any request: an HTML 503 with the
request id, and waits bounded by DB_TIMEOUT unless a statement has an allowance."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import psycopg2
import pytest

from apps.core import database
from tests.servers import PROJECT_DIR, database_url, gunicorn


def get_page(url: str, *, timeout: float = 20, **headers: str):
    request = urllib.request.Request(url, headers={"Accept": "text/html", **headers})
    opener = urllib.request.build_opener(NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.mark.slow
def test_a_page_with_the_database_frozen_is_an_html_503_with_the_request_id(own_postgres):
    """A signed-in person's page reads the session from the database: frozen, the page is an
    HTML 503 with `Retry-After` and the request id, and the next one after it resumes works."""
    cookie = f"sessionid={secrets.token_hex(16)}"  # a session the page must look up
    page = "/account/two-factor/"
    env = own_postgres.env(DB_TIMEOUT="2", DEBUG="false")
    with gunicorn(env=env) as base_url:
        assert get_page(base_url + page, Cookie=cookie)[0] == 302  # no such session: log in
        with own_postgres.cluster.frozen():
            status, headers, html = get_page(base_url + page, Cookie=cookie)
        after = get_page(base_url + page, Cookie=cookie)
    assert status == 503
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Retry-After"] == "5"
    assert "Temporarily unavailable" in html
    assert "nothing was changed" in html
    shown = re.search(r"Request id: <code>([^<]+)</code>", html)
    assert shown is not None
    assert shown[1] == headers["X-Request-ID"]
    assert after[0] == 302


@pytest.mark.slow
def test_a_frozen_server_is_given_up_on_within_a_statement_allowance(own_postgres):
    """An allowance waits for a live server's long statement, not for a frozen server: the probe
    gets no answer, and the wait ends after the timeout and the probe, not after the allowance
    (60 s; the test gives up after 20)."""
    connection = own_postgres.cluster.connect()
    connection.autocommit = True
    raised = []
    done = threading.Event()

    def select_one() -> None:
        try:
            with database.timeout(1), database.statement_allowance(60), connection.cursor() as c:
                c.execute("SELECT 1")
        except database.DatabaseTimeout as exc:
            raised.append(exc)
        finally:
            done.set()

    with own_postgres.cluster.frozen():
        waiting = threading.Thread(target=select_one)
        waiting.start()
        answered_while_frozen = done.wait(timeout=20)
    waiting.join()
    assert answered_while_frozen
    assert len(raised) == 1
    assert connection.closed  # never handed out again


@pytest.mark.slow
def test_a_command_gives_up_connecting_to_a_frozen_server_after_db_connect_timeout(own_postgres):
    """Outside a request, statements take as long as they take, but connecting is bounded by
    DB_CONNECT_TIMEOUT, which libpq leaves to the project in non-blocking mode."""
    env = own_postgres.env(DB_CONNECT_TIMEOUT="1")
    with own_postgres.cluster.frozen():
        result = subprocess.run(
            [sys.executable, "manage.py", "create_api_client", "while-frozen"],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode != 0
    assert "OperationalError" in result.stderr


@pytest.mark.django_db
def test_a_statement_silent_past_its_allowance_is_given_up_on():
    """A live server that keeps a statement silent past its allowance (and does not cancel it
    itself): given up on after the allowance and the timeout, the connection closed."""
    connection = psycopg2.connect(database_url())
    connection.autocommit = True
    with (
        database.timeout(0.5),
        database.statement_allowance(1),
        pytest.raises(database.DatabaseTimeout),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT pg_sleep(4)")
    assert connection.closed
