"""A real gRPC server in this process, on a free loopback port, over the test database.

The server's threads have database connections of their own, so they only see committed rows:
every test that calls it runs with `transactional_db` (the fixtures here ask for it).
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from apps.actions.clients import create_api_client
from apps.rpc.client import ActionsClient
from apps.rpc.server import Server, build_server
from protos.dbapi.v1 import actions_pb2_grpc
from tests.actions import testing_module  # noqa: F401  (registers "testing": actions that fail)
from tests.rpc import testing_module as rpc_testing_module  # noqa: F401  (registers "rpc_testing")


@pytest.fixture
def grpc_server(transactional_db) -> Iterator[Server]:
    server = build_server(bind="127.0.0.1:0", workers=4)
    server.start()
    yield server
    server.stop(grace=5)


@pytest.fixture
def target(grpc_server) -> str:
    return f"127.0.0.1:{grpc_server.port}"


@pytest.fixture
def channel(target) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(target) as channel:
        yield channel


@pytest.fixture
def stub(channel) -> actions_pb2_grpc.ActionsStub:
    """The generated stub, for what the client hides (metadata, raw statuses)."""
    return actions_pb2_grpc.ActionsStub(channel)


@pytest.fixture
def api_key(transactional_db) -> str:
    _, key = create_api_client(name="rpc-caller")
    return key


@pytest.fixture
def rpc(target, api_key) -> Iterator[ActionsClient]:
    with ActionsClient(target, api_key) as client:
        yield client
