"""Statement timeouts: an action's statements run under its timeout; past it, 504, rolled back."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.problems import assert_problem
from tests.servers import gunicorn, post_action, server_backends

pytestmark = pytest.mark.django_db


def test_a_statement_past_the_timeout_is_504_and_rolled_back(call):
    problem = assert_problem(call("example/wait", {"seconds": 3}), 504, type="statement-timeout")
    assert "nothing was changed" in problem["detail"]
    with connection.cursor() as cursor:  # the transaction is usable: it was rolled back
        cursor.execute("SELECT 1")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_timed_out_call_holds_no_lock_afterwards(api_key_value):
    """Through a real server, whose connection is not the test's: after the 504 it is back to
    idle, outside any transaction, holding no lock."""
    with gunicorn(workers=1) as base_url:
        wait = f"{base_url}/actions/example/wait"
        status, _, problem = post_action(wait, {"seconds": 3}, api_key_value)
        backends = server_backends()
    assert (status, problem["type"]) == (504, "/problems/statement-timeout")
    assert backends, "the server kept no connection to look at"
    assert [(b.state, b.locks) for b in backends] == [("idle", 0)] * len(backends)


def test_the_timeout_applies_when_the_first_statement_is_a_server_side_cursor(call, settings):
    settings.ACTIONS_STATEMENT_TIMEOUT = 0.2
    problem = assert_problem(
        call("testing/slow_rows", {"name": "ana", "seconds": 2}), 504, type="statement-timeout"
    )
    assert problem["status"] == 504
    assert call("testing/slow_rows", {"name": "ana"}).json() == [{"name": "ana", "slept": ""}]


def test_the_default_timeout_applies_to_actions_without_their_own(call, settings):
    settings.ACTIONS_STATEMENT_TIMEOUT = 0.2
    problem = assert_problem(
        call("testing/slow_insert", {"name": "ana", "seconds": 2}), 504, type="statement-timeout"
    )
    assert problem["status"] == 504


@pytest.mark.django_db(transaction=True)
def test_the_default_timeout_holds_on_a_kept_connection_whatever_ran_before(
    client, api_key_value, settings
):
    """The usual bound is kept in the connection's session once a call commits: a rolled-back
    call takes it back, an action's own bound applies to its call only, and a new default
    applies at once."""
    from tests.actions.conftest import ActionCaller

    call = ActionCaller(client, api_key_value)
    settings.ACTIONS_STATEMENT_TIMEOUT = 0.3
    connection.close()  # a new connection: nothing kept in its session yet

    dry = call(
        "testing/slow_insert", {"name": "dry", "seconds": 0}, headers={"Prefer": "tx=rollback"}
    )
    assert dry.status_code == 200
    slow = {"name": "slow", "seconds": 1}
    assert_problem(call("testing/slow_insert", slow), 504, type="statement-timeout")

    assert call("testing/slow_insert", {"name": "kept", "seconds": 0}).status_code == 200
    assert call("example/wait", {"seconds": 0.6}).status_code == 200  # its own 1-second bound
    assert_problem(call("testing/slow_insert", slow), 504, type="statement-timeout")

    settings.ACTIONS_STATEMENT_TIMEOUT = 3
    assert call("testing/slow_insert", {"name": "later", "seconds": 0.5}).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY id")
        assert [name for (name,) in cursor.fetchall()] == ["kept", "later"]
