"""Batches, Idempotency-Key, dry runs, timeouts and rate limits over gRPC: the HTTP API's rules,
from the same pipeline, with metadata for headers."""

from __future__ import annotations

import json

import grpc
import pytest
from django.db import connection

from apps.actions.clients import create_api_client
from apps.rpc.values import from_value, to_struct
from protos.dbapi.v1 import actions_pb2

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
            "AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'"
        )
        return cursor.fetchone()[0]


def test_a_grpc_deadline_shorter_than_the_timeout_wins(stub, api_key):
    from tests.servers import wait_until

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
