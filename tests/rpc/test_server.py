"""The server around the services: health, reflection, request ids and logs, database
connections handled as for a request, graceful stop, and `manage.py grpcserver`."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from google.protobuf import json_format, message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from apps.actions.clients import create_api_client
from apps.rpc.client import ActionCallError, ActionsClient
from apps.rpc.server import build_server
from apps.rpc.values import to_struct
from protos.dbapi.v1 import actions_pb2
from tests.rpc.activity import other_sessions, wait_for_sleep_in_flight, wait_until
from tests.servers import PROJECT_DIR, free_port, project_env

Code = grpc.StatusCode
SERVING = health_pb2.HealthCheckResponse.SERVING
GENERATED = re.compile(r"[0-9a-f]{32}")


def health_of(channel: grpc.Channel, service: str = "", timeout: float = 5):
    request = health_pb2.HealthCheckRequest(service=service)
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=timeout).status


# --- Health checking ----------------------------------------------------------------------------


@pytest.mark.parametrize("service", ["", "dbapi.v1.Actions", "api.Api"])
def test_health_answers_serving_for_the_server_and_each_service(channel, service):
    assert health_of(channel, service) == SERVING


def test_health_of_an_unknown_service_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as raised:
        health_of(channel, "no.Such")
    assert raised.value.code() == Code.NOT_FOUND


def test_health_answers_while_every_worker_is_busy(transactional_db):
    """A probe must not wait behind long calls, or the orchestrator restarts a busy server."""
    _, key = create_api_client(name="busy")
    server = build_server(bind="127.0.0.1:0", workers=1)
    server.start()
    target = f"127.0.0.1:{server.port}"
    try:
        with ActionsClient(target, key) as busy, grpc.insecure_channel(target) as probe:
            slow = threading.Thread(
                target=busy.call, args=("rpc_testing", "sleep"), kwargs={"seconds": 2}
            )
            slow.start()
            wait_for_sleep_in_flight()
            assert health_of(probe, timeout=1) == SERVING
            slow.join()
    finally:
        server.stop(grace=5)


# --- Reflection ---------------------------------------------------------------------------------


def test_reflection_lists_both_services(channel):
    services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
    assert {"dbapi.v1.Actions", "api.Api", "grpc.health.v1.Health"} <= services


def reflected_method(channel: grpc.Channel, service: str, method: str):
    """A callable and its message classes built from reflection alone, as grpcurl does."""
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    descriptor = pool.FindServiceByName(service).methods_by_name[method]
    request = message_factory.GetMessageClass(descriptor.input_type)
    reply = message_factory.GetMessageClass(descriptor.output_type)
    call = channel.unary_unary(
        f"/{service}/{method}",
        request_serializer=request.SerializeToString,
        response_deserializer=reply.FromString,
    )
    return call, request


def test_a_client_without_the_protos_calls_both_services_through_reflection(channel, api_key):
    say_hello, hello_request = reflected_method(channel, "api.Api", "sayHello")
    assert say_hello(hello_request(name="ana"), timeout=10).message == "Hello ana!"

    call, call_request = reflected_method(channel, "dbapi.v1.Actions", "Call")
    request = json_format.ParseDict(
        {"module": "example", "action": "foo", "params": {"name": "ana"}}, call_request()
    )
    reply = call(request, metadata=(("authorization", f"Bearer {api_key}"),), timeout=10)
    assert json_format.MessageToDict(reply)["result"]["name"] == "ana"


# --- Request id and logs ------------------------------------------------------------------------


def foo_request() -> actions_pb2.CallRequest:
    return actions_pb2.CallRequest(module="example", action="foo", params=to_struct({"name": "a"}))


def test_a_sane_request_id_is_kept_and_sent_back(stub, api_key):
    metadata = (("authorization", f"Bearer {api_key}"), ("x-request-id", "caller-7f3a.42:1"))
    _, call = stub.Call.with_call(foo_request(), metadata=metadata, timeout=10)
    assert dict(call.trailing_metadata())["x-request-id"] == "caller-7f3a.42:1"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "semi;colon"])
def test_an_insane_request_id_is_replaced(stub, api_key, bad):
    metadata = (("authorization", f"Bearer {api_key}"), ("x-request-id", bad))
    _, call = stub.Call.with_call(foo_request(), metadata=metadata, timeout=10)
    assert GENERATED.fullmatch(dict(call.trailing_metadata())["x-request-id"])


def request_id_of(stub, api_key: str) -> str:
    metadata = (("authorization", f"Bearer {api_key}"),)
    _, call = stub.Call.with_call(foo_request(), metadata=metadata, timeout=10)
    return dict(call.trailing_metadata())["x-request-id"]


def test_each_call_without_one_gets_its_own(stub, api_key):
    assert len({request_id_of(stub, api_key) for _ in range(3)}) == 3


def test_a_stream_sends_its_request_id_before_the_rows(stub, api_key):
    request = actions_pb2.CallRequest(
        module="example", action="numbers", params=to_struct({"count": 3})
    )
    metadata = (("authorization", f"Bearer {api_key}"), ("x-request-id", "stream-1"))
    rows = stub.Stream(request, metadata=metadata, timeout=10)
    assert dict(rows.initial_metadata())["x-request-id"] == "stream-1"
    assert len(list(rows)) == 3


def test_a_failed_call_sends_back_its_request_id_and_problem(stub, api_key):
    request = actions_pb2.CallRequest(module="example", action="bar")
    metadata = (("authorization", f"Bearer {api_key}"), ("x-request-id", "failing-1"))
    with pytest.raises(grpc.RpcError) as raised:
        stub.Call(request, metadata=metadata, timeout=10)
    trailing = dict(raised.value.trailing_metadata())
    assert trailing["x-request-id"] == "failing-1"
    problem = json.loads(trailing["problem-bin"])
    assert problem["request_id"] == "failing-1"
    assert problem["errors"] == {"name": ["This field is required."]}


def test_each_call_is_logged_with_its_request_id_code_and_duration(rpc, log_lines):
    rpc.with_request_id("logged-1").call("example", "foo", name="ana")
    with pytest.raises(ActionCallError):
        rpc.with_request_id("logged-2").call("example", "nothing")
    [ok] = log_lines(request_id="logged-1", logger="apps.rpc.calls")
    [not_found] = log_lines(request_id="logged-2", logger="apps.rpc.calls")
    assert ok["message"] == "/dbapi.v1.Actions/Call OK"
    assert ok["grpc_code"] == "OK"
    assert ok["duration_ms"] >= 0
    assert not_found["grpc_code"] == "NOT_FOUND"


def test_what_an_action_logs_carries_the_call_s_request_id(rpc, log_lines):
    with pytest.raises(ActionCallError):
        rpc.with_request_id("crash-1").call("testing", "crash_after_insert", name="ana")
    [crash] = log_lines(level="ERROR")
    assert crash["request_id"] == "crash-1"


# --- Messages that do not decode ----------------------------------------------------------------


def length_delimited(field: int, payload: bytes) -> bytes:
    """A protobuf field of wire type 2 (bytes, strings, messages), encoded by hand."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            low, n = n & 0x7F, n >> 7
            out.append(low | (0x80 if n else 0))
            if not n:
                return bytes(out)

    return varint(field << 3 | 2) + varint(len(payload)) + payload


def nested_params(depth: int) -> bytes:
    """A CallRequest for example/foo whose params nest `depth` objects deep: {"a": {"a": …}}.
    Encoded by hand: protobuf refuses to build what it would refuse to parse."""
    struct = b""
    for _ in range(depth):
        value = length_delimited(5, struct)  # Value.struct_value
        entry = length_delimited(1, b"a") + length_delimited(2, value)  # fields["a"]
        struct = length_delimited(1, entry)
    return (
        length_delimited(1, b"example") + length_delimited(2, b"foo") + length_delimited(3, struct)
    )


def test_nested_params_are_a_valid_message_up_to_protobuf_s_depth_limit():
    """The encoding of the next test is right: shallow, it parses."""
    request = actions_pb2.CallRequest.FromString(nested_params(3))
    assert (request.module, request.action) == ("example", "foo")
    assert json_format.MessageToDict(request.params) == {"a": {"a": {"a": {}}}}


METHODS = {
    "/dbapi.v1.Actions/Call": "unary_unary",
    "/dbapi.v1.Actions/Stream": "unary_stream",
    "/dbapi.v1.Actions/Batch": "unary_unary",
    "/api.Api/sayHello": "unary_unary",
    "/api.Api/getStream": "unary_stream",
}
GARBAGE = b"\xff\xff\xff\xff"
UNDECODABLE = [
    *((method, GARBAGE) for method in METHODS),
    # api.Api's messages have no Struct: the nested field is just an unknown one to them.
    ("/dbapi.v1.Actions/Call", nested_params(60)),
    ("/dbapi.v1.Actions/Stream", nested_params(60)),
    ("/dbapi.v1.Actions/Batch", length_delimited(1, nested_params(60))),  # calls[0]
]


def call_with_bytes(channel: grpc.Channel, method: str, data: bytes, *, metadata) -> list:
    """Call `method` with `data` as its request message, as it is (no serializer)."""
    answer = getattr(channel, METHODS[method])(method)(data, metadata=metadata, timeout=10)
    return list(answer) if METHODS[method] == "unary_stream" else [answer]


@pytest.mark.parametrize(
    ("method", "data"),
    UNDECODABLE,
    ids=[f"{method} {'garbage' if data == GARBAGE else 'nested'}" for method, data in UNDECODABLE],
)
def test_a_message_that_does_not_decode_is_invalid_argument_with_a_problem(
    channel, api_key, log_lines, method, data
):
    metadata = (("authorization", f"Bearer {api_key}"), ("x-request-id", "undecodable-1"))
    with pytest.raises(grpc.RpcError) as raised:
        call_with_bytes(channel, method, data, metadata=metadata)
    assert raised.value.code() == Code.INVALID_ARGUMENT
    trailing = dict(raised.value.trailing_metadata())
    assert trailing["x-request-id"] == "undecodable-1"
    problem = json.loads(trailing["problem-bin"])
    assert problem["status"] == 400
    assert problem["request_id"] == "undecodable-1"
    assert problem["detail"].startswith("The request message is not a valid ")
    # One line for the call, the access line; no traceback from grpcio or anyone else.
    [line] = log_lines()
    assert line["message"] == f"{method} INVALID_ARGUMENT"
    assert line["request_id"] == "undecodable-1"


# --- Database connections -----------------------------------------------------------------------


@pytest.fixture
def single_worker(transactional_db):
    _, key = create_api_client(name="one-worker")
    server = build_server(bind="127.0.0.1:0", workers=1)
    server.start()
    with ActionsClient(f"127.0.0.1:{server.port}", key) as client:
        yield client
    server.stop(grace=5)


def test_a_worker_keeps_its_connection_between_calls_as_conn_max_age_says(single_worker):
    first = single_worker.call("rpc_testing", "backend")
    assert single_worker.call("rpc_testing", "backend") == first


def test_with_conn_max_age_0_each_call_gets_a_new_connection(single_worker):
    db_settings = connections.settings["default"]
    saved = db_settings["CONN_MAX_AGE"]
    db_settings["CONN_MAX_AGE"] = 0
    try:
        first = single_worker.call("rpc_testing", "backend")
        second = single_worker.call("rpc_testing", "backend")
    finally:
        db_settings["CONN_MAX_AGE"] = saved
    assert first != second


# --- Graceful stop ------------------------------------------------------------------------------


def test_stopping_lets_a_call_in_flight_finish_and_refuses_new_ones(transactional_db):
    _, key = create_api_client(name="stopping")
    server = build_server(bind="127.0.0.1:0", workers=2)
    server.start()
    target = f"127.0.0.1:{server.port}"
    answers = []
    with ActionsClient(target, key) as caller:
        slow = threading.Thread(
            target=lambda: answers.append(caller.call("rpc_testing", "sleep", seconds=1.5))
        )
        slow.start()
        wait_for_sleep_in_flight()
        stopping = threading.Thread(target=server.stop, kwargs={"grace": 10})
        stopping.start()
        time.sleep(0.2)
        with (
            ActionsClient(target, key, timeout=2) as latecomer,
            pytest.raises(ActionCallError) as refused,
        ):
            latecomer.call("example", "foo", name="ana")
        slow.join()
        stopping.join()
    assert answers == [{"slept": 1.5}]
    assert refused.value.code == Code.UNAVAILABLE


def test_stopping_closes_the_database_connections_of_every_thread(transactional_db, api_key):
    """Each thread that served a call holds its own connection; stopping the server closes
    them all (the test database is dropped after the tests)."""
    server = build_server(bind="127.0.0.1:0", workers=3)
    server.start()
    with ActionsClient(f"127.0.0.1:{server.port}", api_key) as client:
        at_once = [
            threading.Thread(
                target=client.call, args=("rpc_testing", "sleep"), kwargs={"seconds": 0.5}
            )
            for _ in range(3)
        ]
        for thread in at_once:
            thread.start()
        assert list(client.stream("example", "numbers", count=2))  # on a stream thread
        for thread in at_once:
            thread.join()
        assert other_sessions() >= 2  # a connection per thread that served a call
        server.stop(grace=5)
    wait_until(lambda: other_sessions() == 0)


# --- manage.py grpcserver -----------------------------------------------------------------------


class GrpcServerProcess:
    """`manage.py grpcserver` in a subprocess, its JSON log lines in a file."""

    def __init__(self, tmp_path, *args: str, **env: str):
        self.log = tmp_path / "grpcserver.log"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "grpcserver", *args],
            cwd=PROJECT_DIR,
            env=project_env(**env),
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
        )

    def wait_until_serving(self, target: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(target) as channel:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"grpcserver exited: {self.log.read_text()}")
                try:
                    if health_of(channel, timeout=1) == SERVING:
                        return
                except grpc.RpcError:
                    time.sleep(0.1)
        raise TimeoutError(f"grpcserver did not serve {target}: {self.log.read_text()}")

    def lines(self) -> list[dict]:
        return [
            json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")
        ]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_grpcserver_serves_on_grpc_bind_and_finishes_a_stream_after_sigterm(tmp_path):
    _, key = create_api_client(name="sigterm")
    port = free_port()
    server = GrpcServerProcess(tmp_path, GRPC_BIND=f"127.0.0.1:{port}", GRPC_WORKERS="3")
    try:
        server.wait_until_serving(f"127.0.0.1:{port}")
        with ActionsClient(f"127.0.0.1:{port}", key, timeout=60) as client:
            rows = client.stream("example", "numbers", count=20_000)
            assert next(rows)["n"] == 1
            server.process.send_signal(signal.SIGTERM)
            assert 1 + sum(1 for _ in rows) == 20_000  # the call in flight finished
        assert server.process.wait(timeout=30) == 0
    finally:
        server.kill()
    messages = [line["message"] for line in server.lines()]
    assert f"gRPC server listening on 127.0.0.1:{port}" in messages
    assert messages[-1] == "gRPC server stopped"
    [listening] = [
        line for line in server.lines() if line["message"].startswith("gRPC server listening")
    ]
    assert listening["workers"] == 3


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_grpcserver_options_win_over_the_settings(tmp_path):
    port = free_port()
    server = GrpcServerProcess(
        tmp_path, "--bind", f"127.0.0.1:{port}", "--workers", "2", GRPC_BIND="127.0.0.1:1"
    )
    try:
        server.wait_until_serving(f"127.0.0.1:{port}")
        server.process.send_signal(signal.SIGINT)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.kill()
    [listening] = [
        line for line in server.lines() if line["message"].startswith("gRPC server listening")
    ]
    assert listening["workers"] == 2


def test_grpcserver_refuses_no_workers():
    with pytest.raises(CommandError, match="--workers must be at least 1"):
        call_command("grpcserver", workers=0)


@pytest.mark.parametrize(
    "setting",
    [{"GRPC_MAX_STREAMS": "0"}, {"GRPC_STREAM_IDLE_TIMEOUT": "0"}],
    ids=["no stream threads", "no idle timeout"],
)
def test_grpcserver_refuses_no_stream_threads_or_no_idle_timeout(setting):
    result = subprocess.run(
        [sys.executable, "manage.py", "grpcserver", "--bind", f"127.0.0.1:{free_port()}"],
        cwd=PROJECT_DIR,
        env=project_env(**setting),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "GRPC_MAX_STREAMS must be at least 1 and GRPC_STREAM_IDLE_TIMEOUT more than 0" in (
        result.stderr
    )


def test_grpcserver_says_when_its_address_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(CommandError, match=f"Cannot listen on 127.0.0.1:{port}"):
            call_command("grpcserver", bind=f"127.0.0.1:{port}")
