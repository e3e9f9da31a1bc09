"""Batches, Idempotency-Key, dry runs, timeouts and rate limits over gRPC: the HTTP API's rules,
from the same pipeline, with metadata for headers."""

from __future__ import annotations

import json
import threading

import grpc
import pytest
from django.db import connection, connections

from apps.actions.clients import create_api_client
from apps.rpc.values import from_value, to_struct
from protos.dbapi.v1 import actions_pb2
from tests.servers import cache_at, redis_server, server_backends, wait_until

Code = grpc.StatusCode


def names() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY id")
        return [row[0] for row in cursor.fetchall()]


def request(module: str, action: str, **params) -> actions_pb2.CallRequest:
    return actions_pb2.CallRequest(module=module, action=action, params=to_struct(params))


def auth(key: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"), *extra)


def failure(call) -> tuple[grpc.StatusCode, dict, dict]:
    """Code, problem and trailing metadata of a failed call."""
    with pytest.raises(grpc.RpcError) as raised:
        call()
    trailing = dict(raised.value.trailing_metadata())
    return raised.value.code(), json.loads(trailing["problem-bin"]), trailing


def test_a_batch_runs_every_call_in_one_transaction(stub, api_key):
    reply = stub.Batch(
        actions_pb2.BatchRequest(
            calls=[request("example", "bar", name="ana"), request("example", "bar", name="bea")]
        ),
        metadata=auth(api_key),
    )
    assert [from_value(r)[0]["name"] for r in reply.results] == ["ana", "bea"]
    assert names() == ["ana", "bea"]


def test_a_batch_whose_third_call_fails_leaves_nothing(stub, api_key):
    calls = [
        request("example", "bar", name="ana"),
        request("example", "bar", name="bea"),
        request("testing", "duplicate_after_insert", name="cid"),
    ]
    code, problem, _ = failure(
        lambda: stub.Batch(actions_pb2.BatchRequest(calls=calls), metadata=auth(api_key))
    )
    assert code == Code.ABORTED
    assert (problem["status"], problem["index"]) == (409, 2)
    assert names() == []


def test_a_repeat_with_the_key_gets_the_first_answer(stub, api_key):
    metadata = auth(api_key, ("idempotency-key", "grpc-1"))
    first = stub.Call(request("example", "bar", name="ana"), metadata=metadata)
    again, call = stub.Call.with_call(request("example", "bar", name="ana"), metadata=metadata)
    assert dict(call.initial_metadata())["idempotent-replayed"] == "true"
    assert from_value(again.result) == from_value(first.result)
    code, problem, _ = failure(
        lambda: stub.Call(request("example", "bar", name="bea"), metadata=metadata)
    )
    assert (code, problem["status"]) == (Code.FAILED_PRECONDITION, 422)
    assert names() == ["ana"]


def test_a_key_made_over_http_is_replayed_over_grpc(stub, api_key, client):
    body = {"name": "ana"}
    over_http = client.post(
        "/actions/example/bar",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": "both"},
    )
    reply, call = stub.Call.with_call(
        request("example", "bar", **body), metadata=auth(api_key, ("idempotency-key", "both"))
    )
    assert dict(call.initial_metadata())["idempotent-replayed"] == "true"
    assert from_value(reply.result) == over_http.json()


def test_a_dry_run_answers_and_leaves_no_row(stub, api_key):
    reply, call = stub.Call.with_call(
        request("example", "bar", name="ana"), metadata=auth(api_key, ("prefer", "tx=rollback"))
    )
    assert dict(call.initial_metadata())["preference-applied"] == "tx=rollback"
    assert from_value(reply.result)[0]["name"] == "ana"
    assert names() == []


def test_a_statement_past_its_timeout_is_deadline_exceeded(stub, api_key):
    code, problem, _ = failure(
        lambda: stub.Call(request("example", "wait", seconds=3), metadata=auth(api_key))
    )
    assert code == Code.DEADLINE_EXCEEDED
    assert problem["type"].endswith("/statement-timeout")


def sleeping_in_the_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND state = 'active' "
            "AND query LIKE '%%SELECT pg_sleep(%%'"
        )
        return cursor.fetchone()[0]


def test_a_grpc_deadline_shorter_than_the_timeout_wins(stub, api_key):
    with pytest.raises(grpc.RpcError) as raised:
        stub.Call(
            request("testing", "sleep_long", name="x", seconds=20),
            metadata=auth(api_key),
            timeout=0.5,
        )
    assert raised.value.code() == Code.DEADLINE_EXCEEDED
    # The server's statement ran under the caller's deadline, not the action's 30 s: it ends.
    wait_until(lambda: sleeping_in_the_database() == 0, timeout=10)


def test_past_the_rate_the_call_is_resource_exhausted_with_the_headers(stub, transactional_db):
    _, key = create_api_client(name="limited", rate="1/min")
    _, call = stub.Call.with_call(request("example", "foo", name="a"), metadata=auth(key))
    initial = dict(call.initial_metadata())
    assert initial["ratelimit-policy"] == '"client";q=1;w=60'
    assert initial["ratelimit"].startswith('"client";r=0;')
    code, problem, trailing = failure(
        lambda: stub.Call(request("example", "foo", name="a"), metadata=auth(key))
    )
    assert code == Code.RESOURCE_EXHAUSTED
    assert problem["type"].endswith("/rate-limited")
    assert int(trailing["retry-after"]) >= 1
    assert trailing["ratelimit-policy"] == '"client";q=1;w=60'
    assert trailing["ratelimit"].startswith('"client";r=0;')


def test_two_concurrent_calls_with_one_key_run_the_action_once(stub, api_key):
    metadata = auth(api_key, ("idempotency-key", "concurrent"))
    slow = request("testing", "slow_insert", name="once", seconds=2)
    answers = {}

    def first():
        try:
            answers["first"] = stub.Call(slow, metadata=metadata)
        finally:
            connections.close_all()

    thread = threading.Thread(target=first)
    thread.start()
    wait_until(lambda: sleeping_in_the_database() > 0)  # the first call holds the key
    code, problem, trailing = failure(lambda: stub.Call(slow, metadata=metadata))
    thread.join()
    assert code == Code.ABORTED
    assert problem["type"].endswith("/idempotency-key-in-flight")
    assert trailing["retry-after"]
    again, call = stub.Call.with_call(slow, metadata=metadata)
    assert dict(call.initial_metadata())["idempotent-replayed"] == "true"
    assert from_value(again.result) == from_value(answers["first"].result) == {"name": "once"}
    assert names() == ["once"]


def test_a_timed_out_call_holds_no_lock_afterwards(stub, api_key):
    """The server's own connection, after the 504: back to idle, no transaction, no lock."""
    code, _, _ = failure(
        lambda: stub.Call(request("example", "wait", seconds=3), metadata=auth(api_key))
    )
    assert code == Code.DEADLINE_EXCEEDED
    backends = server_backends()
    assert backends, "the server kept no connection to look at"
    assert [(b.state, b.locks) for b in backends] == [("idle", 0)] * len(backends)


def test_with_redis_stopped_the_rate_degrades_to_this_process_share_and_no_call_fails(
    stub, settings, transactional_db, log_lines
):
    _, key = create_api_client(name="degraded", rate="4/min")
    foo = request("example", "foo", name="ana")
    with redis_server() as url:
        settings.CACHES = cache_at(url)
        _, call = stub.Call.with_call(foo, metadata=auth(key))  # counted in that Redis
        assert dict(call.initial_metadata())["ratelimit"].startswith('"client";r=3;')
    # That Redis is stopped now: this process allows 4 / ACTIONS_RATE_PROCESSES (2) calls.
    for remaining in (1, 0):
        _, call = stub.Call.with_call(foo, metadata=auth(key))
        assert dict(call.initial_metadata())["ratelimit"].startswith(f'"client";r={remaining};')
    code, problem, trailing = failure(lambda: stub.Call(foo, metadata=auth(key)))
    assert (code, problem["status"]) == (Code.RESOURCE_EXHAUSTED, 429)
    assert trailing["ratelimit-policy"] == '"client";q=4;w=60'
    [warning] = log_lines(logger="apps.actions.rates")
    assert "counted per process" in warning["message"]


# --- The RateLimit metadata on problems after the count -------------------------------------------


@pytest.fixture
def counted_key(transactional_db) -> str:
    """A key whose client has a rate no test reaches: every answer after the count shows it."""
    return create_api_client(name="counted", rate="100/min")[1]


def assert_counted(metadata: dict, *, remaining: int) -> None:
    assert metadata["ratelimit-policy"] == '"client";q=100;w=60'
    assert metadata["ratelimit"].startswith(f'"client";r={remaining};t=')


def test_invalid_input_is_invalid_argument_with_the_ratelimit_metadata(stub, counted_key):
    code, problem, trailing = failure(
        lambda: stub.Call(
            request("example", "bar", email="x@example.com"), metadata=auth(counted_key)
        )
    )
    assert (code, problem["status"]) == (Code.INVALID_ARGUMENT, 400)
    assert_counted(trailing, remaining=99)
    assert names() == []


def test_a_timeout_is_deadline_exceeded_with_the_ratelimit_metadata(stub, counted_key):
    code, problem, trailing = failure(
        lambda: stub.Call(request("example", "wait", seconds=3), metadata=auth(counted_key))
    )
    assert (code, problem["status"]) == (Code.DEADLINE_EXCEEDED, 504)
    assert_counted(trailing, remaining=99)


def test_a_batch_s_failing_call_has_the_ratelimit_metadata(stub, counted_key):
    calls = [
        request("example", "bar", name="ana"),
        request("example", "bar", name="bea"),
        request("testing", "duplicate_after_insert", name="cid"),
    ]
    code, problem, trailing = failure(
        lambda: stub.Batch(actions_pb2.BatchRequest(calls=calls), metadata=auth(counted_key))
    )
    assert (code, problem["status"], problem["index"]) == (Code.ABORTED, 409, 2)
    assert_counted(trailing, remaining=97)
    assert names() == []


def test_a_bug_is_internal_with_the_ratelimit_metadata_and_logged_once(
    stub, counted_key, log_lines
):
    code, problem, trailing = failure(
        lambda: stub.Call(
            request("testing", "crash_after_insert", name="bob"), metadata=auth(counted_key)
        )
    )
    assert (code, problem["status"]) == (Code.INTERNAL, 500)
    assert_counted(trailing, remaining=99)
    [error] = log_lines(level="ERROR")
    assert "Traceback" in error["exc_info"]
    assert names() == []


def test_a_stream_that_fails_midway_ends_with_the_ratelimit_metadata(stub, counted_key):
    replies = stub.Stream(request("testing", "rows_then_fail"), metadata=auth(counted_key))
    rows = []
    with pytest.raises(grpc.RpcError) as raised:
        rows.extend(from_value(row.value) for row in replies)  # keeps the rows before the error
    assert rows == [{"n": 1}, {"n": 2}]
    assert raised.value.code() == Code.INTERNAL
    assert_counted(dict(raised.value.trailing_metadata()), remaining=99)


def test_a_call_before_the_count_has_no_ratelimit_metadata(stub, counted_key):
    """NOT_FOUND: nothing the client may call was named, so nothing was counted."""
    code, _, trailing = failure(
        lambda: stub.Call(request("example", "nothing"), metadata=auth(counted_key))
    )
    assert code == Code.NOT_FOUND
    assert "ratelimit" not in trailing
    _, call = stub.Call.with_call(request("example", "foo", name="a"), metadata=auth(counted_key))
    assert_counted(dict(call.initial_metadata()), remaining=99)
