"""gRPC upstreams by name: `upstream_channel("dbapi")` reaches another dbapi with its token,
the request id and a deadline, and its failures are UpstreamError (502) / UpstreamTimeout (504)."""

from __future__ import annotations

import grpc
import pytest

from apps.core.request_id import request_id_scope
from apps.core.upstreams import UpstreamError, UpstreamTimeout, close_upstreams, upstream_channel
from apps.rpc.client import ActionCallError, ActionsClient
from tests.servers import free_port


def upstream_config(url: str, **overrides) -> dict:
    return {"URL": url, "TIMEOUT": 5.0, "RETRIES": 0, "TOKEN": "", **overrides}


@pytest.fixture
def upstreams(settings, target, api_key):
    """ "dbapi" is the test server, with the key as its token; "dead" answers nothing."""
    settings.UPSTREAMS = {
        "dbapi": upstream_config(f"grpc://{target}", TOKEN=api_key),
        "slow": upstream_config(f"grpc://{target}", TOKEN=api_key, TIMEOUT=0.3),
        "dead": upstream_config(f"grpc://127.0.0.1:{free_port()}"),
    }
    yield
    close_upstreams()


def test_a_named_grpc_upstream_gets_the_token_and_the_request_id(upstreams, log_lines):
    assert upstream_channel("dbapi") is upstream_channel("dbapi")
    with request_id_scope("upstream-grpc-1"):
        result = ActionsClient(upstream_channel("dbapi")).call("example", "foo", name="ana")
    assert result["name"] == "ana"  # authorised by the upstream's token alone
    # The server's own log line, written in its thread, carries the id the caller passed on.
    [served] = log_lines(logger="apps.rpc.calls", request_id="upstream-grpc-1")
    assert served["grpc_code"] == "OK"


def test_a_stream_goes_through_the_named_channel_too(upstreams):
    rows = ActionsClient(upstream_channel("dbapi")).stream("example", "numbers", count=3)
    assert [row["n"] for row in rows] == [1, 2, 3]


def test_an_unreachable_grpc_upstream_is_an_upstream_error(upstreams):
    with pytest.raises(UpstreamError) as raised:
        ActionsClient(upstream_channel("dead")).call("example", "foo", name="ana")
    assert type(raised.value) is UpstreamError
    assert raised.value.status_code == 502


def test_a_grpc_upstream_past_its_deadline_is_an_upstream_timeout(upstreams):
    with pytest.raises(UpstreamTimeout) as raised:
        ActionsClient(upstream_channel("slow")).call("rpc_testing", "sleep", seconds=2)
    assert raised.value.status_code == 504


def test_the_upstreams_own_answers_stay_the_callers_to_handle(upstreams):
    with pytest.raises(ActionCallError) as raised:
        ActionsClient(upstream_channel("dbapi")).call("example", "nothing")
    assert raised.value.code == grpc.StatusCode.NOT_FOUND


def test_an_http_upstream_is_not_a_grpc_one(settings):
    settings.UPSTREAMS = {"flask": upstream_config("http://127.0.0.1:5000")}
    with pytest.raises(UpstreamError):
        upstream_channel("flask")
