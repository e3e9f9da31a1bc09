"""No caller, with a key or without, can hold the server: streams whose clients stop reading
never delay a unary call, a stream that waits too long for its client is cancelled and rolled
back, and a call past the threads of its kind is refused at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from apps.example.models import ExampleUser
from apps.rpc.client import ActionCallError, ActionsClient
from apps.rpc.server import Server, build_server
from apps.rpc.values import from_value, to_struct
from protos.api import api_pb2, api_pb2_grpc
from protos.dbapi.v1 import actions_pb2, actions_pb2_grpc
from tests.rpc.activity import open_transactions, wait_for_sleep_in_flight, wait_until

Code = grpc.StatusCode


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def action_request(module: str, action: str, **params) -> actions_pb2.CallRequest:
    return actions_pb2.CallRequest(module=module, action=action, params=to_struct(params))


def first_reply(replies: Iterator) -> Code:
    """Take the first message of a stream (then stop reading): OK, or the code it ended with."""
    try:
        next(replies)
    except grpc.RpcError as exc:
        return exc.code()
    return Code.OK


@pytest.fixture
def small_server(transactional_db, settings) -> Iterator[Server]:
    """One worker for unary calls and one thread for streams: easy to fill."""
    settings.GRPC_MAX_STREAMS = 1
    server = build_server(bind="127.0.0.1:0", workers=1)
    server.start()
    yield server
    server.stop(grace=5)


# --- Streams never hold unary calls back ----------------------------------------------------------


def test_stalled_streams_do_not_delay_calls(grpc_server, target, channel, api_key, settings):
    """32 streams over 8 connections, half of them the demo's (no key), each read once and then
    never again; then 20 authenticated calls must each answer within 1 s (their deadline)."""
    connections = [
        grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(8)
    ]
    streams = []
    try:
        for n, connection in enumerate(connections):
            demo = api_pb2_grpc.ApiStub(connection)
            actions = actions_pb2_grpc.ActionsStub(connection)
            for m in range(2):
                streams.append(demo.getStream(api_pb2.ApiRequest(length=100_000), timeout=60))
                rows = action_request(
                    "rpc_testing", "insert_then_rows", name=f"s{n}-{m}", count=10**6
                )
                streams.append(actions.Stream(rows, metadata=auth(api_key), timeout=60))
        codes = [first_reply(stream) for stream in streams]
        assert set(codes) <= {Code.OK, Code.RESOURCE_EXHAUSTED}
        assert codes.count(Code.OK) >= settings.GRPC_MAX_STREAMS  # every stream thread held

        stub = actions_pb2_grpc.ActionsStub(channel)
        for i in range(20):
            request = action_request("example", "foo", name=f"ana{i}")
            reply = stub.Call(request, metadata=auth(api_key), timeout=1)
            assert from_value(reply.result)["name"] == f"ana{i}"
        probe = health_pb2_grpc.HealthStub(channel)
        assert probe.Check(health_pb2.HealthCheckRequest(), timeout=1).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
    finally:
        for stream in streams:
            stream.cancel()
        for connection in connections:
            connection.close()


# --- Idle streams ---------------------------------------------------------------------------------


def test_a_stream_whose_client_stops_reading_is_cancelled_and_rolled_back(
    settings, transactional_db, api_key, log_lines
):
    settings.GRPC_STREAM_IDLE_TIMEOUT = 0.5
    server = build_server(bind="127.0.0.1:0", workers=1)
    server.start()
    try:
        with ActionsClient(f"127.0.0.1:{server.port}", api_key, timeout=60) as client:
            rows = client.stream("rpc_testing", "insert_then_rows", name="idle", count=10**6)
            assert next(rows)["n"] == 1
            assert open_transactions() == 1  # the stream's, holding the insert
            wait_until(lambda: open_transactions() == 0)  # then the client reads nothing more
            with pytest.raises(ActionCallError) as ended:
                for _ in rows:  # what had reached the client before, then the end
                    pass
    finally:
        server.stop(grace=5)
    assert ended.value.code == Code.CANCELLED
    assert not ExampleUser.objects.filter(name="idle").exists()  # rolled back
    [warning] = log_lines(logger="apps.rpc.calls", level="WARNING")
    assert warning["message"].startswith("Stream cancelled: its client took nothing for")
    [logged] = log_lines(grpc_method="/dbapi.v1.Actions/Stream")
    assert logged["grpc_code"] == "CANCELLED"
    assert logged["request_id"] == warning["request_id"]


def test_a_stream_slow_to_produce_its_rows_is_not_idle(settings, small_server, api_key):
    """Only waiting for the client counts: a slow query between rows does not."""
    settings.GRPC_STREAM_IDLE_TIMEOUT = 0.2
    with ActionsClient(f"127.0.0.1:{small_server.port}", api_key, timeout=30) as client:
        rows = list(client.stream("rpc_testing", "slow_rows", count=3, seconds=0.4))
    assert rows == [{"n": 1}, {"n": 2}, {"n": 3}]


# --- Past capacity --------------------------------------------------------------------------------


def assert_refused_as_busy(exc: grpc.RpcError) -> None:
    assert exc.code() == Code.RESOURCE_EXHAUSTED
    trailing = dict(exc.trailing_metadata())
    problem = json.loads(trailing["problem-bin"])
    assert problem["type"].endswith("/server-busy")
    assert problem["request_id"] == trailing["x-request-id"]
    assert trailing["retry-after"] == "1"


def test_a_call_past_the_workers_is_refused_at_once(small_server, api_key):
    target = f"127.0.0.1:{small_server.port}"
    with ActionsClient(target, api_key) as client, grpc.insecure_channel(target) as channel:
        slow = threading.Thread(
            target=client.call, args=("rpc_testing", "sleep"), kwargs={"seconds": 2}
        )
        slow.start()
        wait_for_sleep_in_flight()
        stub = actions_pb2_grpc.ActionsStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Call(
                action_request("example", "foo", name="ana"), metadata=auth(api_key), timeout=1
            )
        assert_refused_as_busy(refused.value)
        slow.join()
        assert client.call("example", "foo", name="ana")["name"] == "ana"  # the worker is free


def test_a_stream_past_the_stream_threads_is_refused_at_once(small_server, api_key):
    target = f"127.0.0.1:{small_server.port}"
    with grpc.insecure_channel(target) as channel:
        stub = actions_pb2_grpc.ActionsStub(channel)
        held = stub.Stream(
            action_request("rpc_testing", "insert_then_rows", name="held", count=10**6),
            metadata=auth(api_key),
            timeout=60,
        )
        assert first_reply(held) == Code.OK
        with pytest.raises(grpc.RpcError) as refused:
            list(
                stub.Stream(
                    action_request("example", "numbers", count=3), metadata=auth(api_key), timeout=1
                )
            )
        assert_refused_as_busy(refused.value)
        reply = stub.Call(
            action_request("example", "foo", name="ana"), metadata=auth(api_key), timeout=1
        )
        assert from_value(reply.result)["name"] == "ana"  # unary calls have threads of their own
        held.cancel()

        def served_again() -> bool:
            """Until the held stream has ended, a stream is refused as busy."""
            rows = stub.Stream(
                action_request("example", "numbers", count=3), metadata=auth(api_key)
            )
            return first_reply(rows) == Code.OK

        wait_until(served_again)
