"""Idempotency-Key: exactly once per API client and key; replays carry the first answer."""

from __future__ import annotations

import datetime as dt
import io
import threading

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection, connections

from apps.actions.models import IdempotencyRecord
from tests.actions.conftest import ActionCaller
from tests.problems import assert_problem
from tests.servers import wait_until


def names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_a_repeat_gets_the_first_answer_byte_for_byte_and_runs_nothing(call):
    first = call("example/bar", {"name": "ana"}, headers={"Idempotency-Key": "order-1"})
    assert first.status_code == 200
    assert "Idempotent-Replayed" not in first
    call("example/bar", {"name": "ana", "email": "changed@example.com"})  # changes the row
    again = call("example/bar", {"name": "ana"}, headers={"Idempotency-Key": "order-1"})
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # the kept answer, not a new run
    assert again["Content-Type"] == "application/json"


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422(call):
    call("example/bar", {"name": "ana"}, headers={"Idempotency-Key": "k"})
    problem = assert_problem(
        call("example/bar", {"name": "bea"}, headers={"Idempotency-Key": "k"}),
        422,
        type="idempotency-key-reused",
    )
    assert "another call" in problem["detail"]
    assert names() == ["ana"]


@pytest.mark.django_db
def test_keys_belong_to_their_client(call, client):
    from apps.actions.clients import create_api_client

    _, other_key = create_api_client(name="other")
    other = ActionCaller(client, other_key)
    call("example/bar", {"name": "ana"}, headers={"Idempotency-Key": "shared"})
    response = other("example/bar", {"name": "bea"}, headers={"Idempotency-Key": "shared"})
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response
    assert names() == ["ana", "bea"]


@pytest.mark.django_db
def test_a_failed_first_call_keeps_nothing_so_a_retry_runs(call):
    headers = {"Idempotency-Key": "retry-me"}
    assert_problem(call("testing/duplicate_after_insert", {"name": "x"}, headers=headers), 409)
    assert not IdempotencyRecord.objects.exists()
    # The retry runs again (and fails again the same way), rather than replaying or refusing.
    assert_problem(call("testing/duplicate_after_insert", {"name": "x"}, headers=headers), 409)
    assert names() == []


@pytest.mark.django_db
def test_a_failed_call_then_its_retry_with_a_right_input(call):
    headers = {"Idempotency-Key": "fix-and-retry"}
    assert_problem(call("example/bar", {"email": "a@example.com"}, headers=headers), 400)
    assert not IdempotencyRecord.objects.exists()
    response = call("example/bar", {"name": "ana"}, headers=headers)
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response


@pytest.mark.parametrize(
    "key", ["", "x" * 256, "caf\u00e9", "tab\there"], ids=["empty", "too-long", "non-ascii", "tab"]
)
@pytest.mark.django_db
def test_a_key_that_is_not_1_to_255_printable_ascii_is_400(call, key):
    response = call("example/bar", {"name": "ana"}, HTTP_IDEMPOTENCY_KEY=key)
    assert_problem(response, 400, type="invalid-idempotency-key")
    assert names() == []


@pytest.mark.django_db
def test_batches_take_a_key_too(call):
    body = {"calls": [{"module": "example", "action": "bar", "input": {"name": "ana"}}]}
    first = call("batch", body, headers={"Idempotency-Key": "batch-1"})
    again = call("batch", body, headers={"Idempotency-Key": "batch-1"})
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert names() == ["ana"]


@pytest.mark.django_db
def test_a_dry_run_keeps_nothing_for_its_key(call):
    headers = {"Idempotency-Key": "dry", "Prefer": "tx=rollback"}
    assert call("example/bar", {"name": "ana"}, headers=headers).status_code == 200
    assert not IdempotencyRecord.objects.exists()
    real = call("example/bar", {"name": "ana"}, headers={"Idempotency-Key": "dry"})
    assert "Idempotent-Replayed" not in real
    assert names() == ["ana"]


@pytest.mark.django_db(databases="__all__")
def test_an_expired_key_runs_again_and_is_pruned(call, settings):
    settings.ACTIONS_IDEMPOTENCY_SECONDS = 60
    headers = {"Idempotency-Key": "old"}
    call("example/bar", {"name": "ana"}, headers=headers)
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)):
        again = call("example/bar", {"name": "ana"}, headers=headers)
        assert "Idempotent-Replayed" not in again  # expired: the call ran again
        call("example/bar", {"name": "bea"}, headers={"Idempotency-Key": "other"})
    out = io.StringIO()
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=122)):
        call_command("prune_idempotency_keys", stdout=out)
    assert "default: 2 expired answer(s) removed" in out.getvalue()
    assert not IdempotencyRecord.objects.exists()


def sleeping_in_the_database() -> bool:
    """A statement of this test database is in pg_sleep right now."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' "
            "AND query LIKE '%%SELECT pg_sleep(%%'"
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_calls_with_one_key_run_the_action_once(client, api_key_value):
    call = ActionCaller(client, api_key_value)
    body = {"name": "once", "seconds": 2}
    headers = {"Idempotency-Key": "concurrent"}
    answers = {}

    def first():
        try:
            answers["first"] = call("testing/slow_insert", body, headers=headers)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(sleeping_in_the_database)  # the first call holds the key, inside its transaction
    second = call("testing/slow_insert", body, headers=headers)
    thread.join()
    assert_problem(second, 409, type="idempotency-key-in-flight")
    assert second["Retry-After"]
    assert answers["first"].status_code == 200
    third = call("testing/slow_insert", body, headers=headers)
    assert third["Idempotent-Replayed"] == "true"
    assert third.content == answers["first"].content
    assert names() == ["once"]
