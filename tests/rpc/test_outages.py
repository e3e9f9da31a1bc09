"""A database that stops answering: gRPC calls end UNAVAILABLE, never later than their deadline.

Against a PostgreSQL cluster of the tests' own, frozen with SIGSTOP (tests.servers)."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from apps.rpc.client import ActionCallError, ActionsClient
from apps.rpc.values import to_struct
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc
from tests.servers import grpcserver

Code = grpc.StatusCode


@pytest.mark.slow
def test_frozen_database_is_unavailable_over_grpc(own_postgres):
    key = own_postgres.api_key
    with grpcserver(env=own_postgres.env(DB_TIMEOUT="2")) as target:
        with grpc.insecure_channel(target) as channel:
            stub = actions_pb2_grpc.ActionsStub(channel)
            request = actions_pb2.CallRequest(
                module="example", action="bar", params=to_struct({"name": "grpc-frozen"})
            )
            metadata = (("authorization", f"Bearer {key}"),)
            stub.Call(request, metadata=metadata, timeout=10)  # the worker holds a connection
            with own_postgres.cluster.frozen():
                # The call's deadline is far; the answer must come within DB_TIMEOUT (and slack
                # for a loaded machine): a bound on the client's wait, not on the server's.
                call = stub.Call.future(request, metadata=metadata, timeout=20)
                with pytest.raises(grpc.RpcError) as raised:
                    call.result(timeout=2 + 1.5)
        with ActionsClient(target, key) as client:
            after = client.call("example", "bar", name="grpc-after")
    assert raised.value.code() == Code.UNAVAILABLE
    trailing = dict(raised.value.trailing_metadata())
    problem = json.loads(trailing["problem-bin"])
    assert problem["status"] == 503
    assert problem["detail"].startswith("The database is unavailable; nothing was changed.")
    assert trailing["retry-after"] == "5"
    assert problem["request_id"] == trailing["x-request-id"]
    assert [row["name"] for row in after] == ["grpc-after"]


@pytest.mark.slow
def test_a_call_gives_up_on_a_frozen_database_at_its_deadline(own_postgres):
    """With one worker and DB_TIMEOUT far away, a call whose deadline passes while it waits for
    the database frees the worker then: the next call (no database) is served long before."""
    env = own_postgres.env(DB_TIMEOUT="60")
    key = own_postgres.api_key
    with grpcserver(env=env, workers=1) as target:
        with ActionsClient(target, key, timeout=10) as client:
            client.call("example", "bar", name="grpc-deadline")  # the key cached, a connection kept
        with own_postgres.cluster.frozen():
            with (
                ActionsClient(target, key, timeout=1) as client,
                pytest.raises(ActionCallError) as late,
            ):
                client.call("example", "bar", name="grpc-deadline")
            served, refusals = None, set()
            give_up_at = time.monotonic() + 15
            with ActionsClient(target, key, timeout=2) as client:
                while served is None and time.monotonic() < give_up_at:
                    try:
                        served = client.call("example", "foo", name="no-database")
                    except ActionCallError as refused:  # the worker is still busy
                        refusals.add(refused.code)
    assert late.value.code == Code.DEADLINE_EXCEEDED
    assert served is not None, f"no call served while the worker waited: {refusals}"
    assert served["name"] == "no-database"
    assert refusals <= {Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED}
