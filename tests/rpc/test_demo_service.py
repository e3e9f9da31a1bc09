"""The original demo service, api.Api, answers its own client's calls unchanged."""

from __future__ import annotations

import json

import grpc
import pytest

from protos.api import api_pb2, api_pb2_grpc


@pytest.fixture
def api(channel) -> api_pb2_grpc.ApiStub:
    return api_pb2_grpc.ApiStub(channel)


def test_say_hello_greets_by_name_without_a_key(api):
    assert api.sayHello(api_pb2.HelloRequest(name="ana"), timeout=10).message == "Hello ana!"


def test_get_all_gives_items_one_to_length(api):
    items = api.getAll(api_pb2.ApiRequest(length=3), timeout=10).items
    assert [(item.id, item.name) for item in items] == [(1, "name 1"), (2, "name 2"), (3, "name 3")]


def test_get_stream_gives_the_same_items_one_by_one(api):
    items = api.getStream(api_pb2.ApiRequest(length=3), timeout=10)
    assert [(item.id, item.name) for item in items] == [(1, "name 1"), (2, "name 2"), (3, "name 3")]


@pytest.mark.parametrize("length", [0, -5])
def test_no_length_gives_no_items(api, length):
    assert list(api.getAll(api_pb2.ApiRequest(length=length), timeout=10).items) == []
    assert list(api.getStream(api_pb2.ApiRequest(length=length), timeout=10)) == []


def test_get_all_refuses_a_length_it_would_have_to_hold_in_memory(api):
    with pytest.raises(grpc.RpcError) as raised:
        api.getAll(api_pb2.ApiRequest(length=100_001), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_get_stream_refuses_more_items_than_grpc_demo_max_length(api):
    """It needs no key: what one call may cost is bounded, as getAll's is."""
    with pytest.raises(grpc.RpcError) as raised:
        list(api.getStream(api_pb2.ApiRequest(length=100_001), timeout=10))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    problem = json.loads(dict(raised.value.trailing_metadata())["problem-bin"])
    assert problem["errors"] == {"length": ["Ensure this value is less than or equal to 100000."]}


def items(api: api_pb2_grpc.ApiStub, method: str, length: int) -> list[api_pb2.Item]:
    request = api_pb2.ApiRequest(length=length)
    if method == "getAll":
        return list(api.getAll(request, timeout=10).items)
    return list(api.getStream(request, timeout=10))


@pytest.mark.parametrize("method", ["getAll", "getStream"])
def test_the_demo_limit_is_grpc_demo_max_length(api, settings, method):
    settings.GRPC_DEMO_MAX_LENGTH = 5
    assert len(items(api, method, 5)) == 5
    with pytest.raises(grpc.RpcError) as raised:
        items(api, method, 6)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
