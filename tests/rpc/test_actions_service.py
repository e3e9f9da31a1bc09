"""dbapi.v1.Actions answers as `POST /actions/<module>/<action>` does: the same results, every
status of the HTTP table as its gRPC code, and the same validation errors for the same input."""

from __future__ import annotations

import json
import re

import grpc
import pytest
from django.db import connection

from apps.actions.clients import create_api_client, revoke_api_client
from apps.actions.models import ApiClient
from apps.rpc.client import ActionCallError, ActionsClient
from protos.dbapi.v1 import actions_pb2
from tests.http_upstream import http_upstream
from tests.servers import free_port

Code = grpc.StatusCode
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def call_error(client: ActionsClient, module: str, action: str, /, **params) -> ActionCallError:
    with pytest.raises(ActionCallError) as raised:
        client.call(module, action, **params)
    return raised.value


def stream_error(client: ActionsClient, module: str, action: str, /, **params) -> ActionCallError:
    with pytest.raises(ActionCallError) as raised:
        list(client.stream(module, action, **params))
    return raised.value


def http_post(client, key: str, path: str, body: dict):
    return client.post(
        f"/actions/{path}",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def names_stored() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


def without_request_id(problem: dict) -> dict:
    return {k: v for k, v in problem.items() if k != "request_id"}


# --- Results ------------------------------------------------------------------------------------


def test_foo_answers_name_email_and_time(rpc):
    result = rpc.call("example", "foo", name="ana", email="ana@example.com")
    assert result.keys() == {"name", "email", "time"}
    assert result["name"] == "ana"
    assert result["email"] == "ana@example.com"
    assert ISO_8601.fullmatch(result["time"])


def test_bar_stores_one_row_per_name_and_answers_its_rows(rpc):
    first = rpc.call("example", "bar", name="ana", email="ana@example.com")
    second = rpc.call("example", "bar", name="ana", email="ana@example.org")
    assert second[0]["id"] == first[0]["id"]
    assert second[0]["email"] == "ana@example.org"
    assert second[0].keys() == {"id", "name", "email", "created_at"}
    assert names_stored() == ["ana"]


def test_results_are_encoded_exactly_as_over_http(rpc, client, api_key):
    over_http = http_post(client, api_key, "testing/types", {}).json()
    over_grpc = rpc.call("testing", "types")
    # Compared as JSON text, so that 1 and 1.0 or an object's nesting would show.
    assert json.dumps(over_grpc, sort_keys=True) == json.dumps(over_http, sort_keys=True)
    assert over_http["big"] == "12345678901234567890.000000001"  # a Decimal stays exact
    assert over_http["raw"] == "AP8Q"  # bytes as base64


def test_call_reads_an_iterator_result_to_the_end(rpc):
    assert rpc.call("testing", "rows") == [{"n": n} for n in range(1, 6)]


def test_stream_sends_each_row(rpc):
    rows = list(rpc.stream("example", "numbers", count=5))
    assert rows == [{"n": n, "label": f"row {n}"} for n in range(1, 6)]


def test_stream_shapes_rows_with_the_output_serializer(rpc):
    [row] = rpc.stream("example", "bar", name="bea")
    assert row.keys() == {"id", "name", "email", "created_at"}
    assert row["name"] == "bea"


def test_stream_of_a_result_that_is_one_object_sends_it_once(rpc):
    [row] = rpc.stream("example", "foo", name="ana")
    assert row["name"] == "ana"


# --- 401 UNAUTHENTICATED ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [(), (("authorization", ""),), (("authorization", "Bearer"),), (("authorization", "Basic x"),)],
    ids=["absent", "empty", "no-key", "other-scheme"],
)
def test_a_missing_key_is_unauthenticated(stub, metadata):
    request = actions_pb2.CallRequest(module="example", action="foo")
    with pytest.raises(grpc.RpcError) as raised:
        stub.Call(request, metadata=metadata, timeout=10)
    assert raised.value.code() == Code.UNAUTHENTICATED
    assert raised.value.details() == "Send an API key: Authorization: Bearer <key>."


def test_an_unknown_key_is_unauthenticated(target):
    with ActionsClient(target, "0123456789ab.not-a-real-secret") as stranger:
        error = call_error(stranger, "example", "foo", name="ana")
    assert error.code == Code.UNAUTHENTICATED
    assert error.problem["status"] == 401
    assert error.details == "The API key is unknown or has been revoked."


def test_a_revoked_key_is_unauthenticated_at_once(target):
    api_client, key = create_api_client(name="soon-revoked")
    with ActionsClient(target, key) as caller:
        assert caller.call("example", "foo", name="ana")["name"] == "ana"  # verified and cached
        revoke_api_client(api_client)
        assert call_error(caller, "example", "foo", name="ana").code == Code.UNAUTHENTICATED


def test_a_grpc_call_records_last_used_at(rpc):
    assert ApiClient.objects.get(name="rpc-caller").last_used_at is None
    rpc.call("example", "foo", name="ana")
    assert ApiClient.objects.get(name="rpc-caller").last_used_at is not None


# --- 403 PERMISSION_DENIED ----------------------------------------------------------------------


def test_a_key_limited_to_other_modules_is_permission_denied(target):
    _, key = create_api_client(name="testing-only", allowed_modules=["testing"])
    with ActionsClient(target, key) as limited:
        error = call_error(limited, "example", "foo", name="ana")
        assert limited.call("testing", "rows")[0] == {"n": 1}
        streamed = stream_error(limited, "example", "numbers", count=3)
    assert error.code == streamed.code == Code.PERMISSION_DENIED
    assert error.details == "This API key may not call the 'example' module."


# --- 404 NOT_FOUND ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "action", "details"),
    [
        ("nothing", "foo", "There is no action module 'nothing'."),
        ("example", "nothing", "The 'example' module has no action 'nothing'."),
    ],
)
def test_an_unknown_module_or_action_is_not_found(rpc, module, action, details):
    error = call_error(rpc, module, action)
    assert error.code == Code.NOT_FOUND
    assert error.details == details


# --- 400 INVALID_ARGUMENT -----------------------------------------------------------------------


def test_invalid_input_is_invalid_argument_with_the_errors_per_field(rpc):
    error = call_error(rpc, "example", "bar", email="not-an-email")
    assert error.code == Code.INVALID_ARGUMENT
    assert error.details == "The input is not valid."
    assert error.errors == {
        "name": ["This field is required."],
        "email": ["Enter a valid email address."],
    }
    assert error.problem["status"] == 400
    assert error.problem["request_id"] == error.request_id


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("example/bar", {}),
        ("example/bar", {"name": ""}),
        ("example/bar", {"name": "x" * 101}),
        ("example/bar", {"name": "ana", "email": "not-an-email"}),
        ("example/bar", {"name": None}),
        ("example/bar", {"name": ["a", "list"]}),
        ("example/foo", {"name": {"an": "object"}}),
        ("example/foo", {"name": True}),
        ("example/numbers", {"count": 0}),
        ("example/numbers", {"count": 1.5}),
        ("example/numbers", {"count": "many"}),
        ("example/numbers", {"count": 1_000_001}),
        ("testing/refuse_after_insert", {"name": "ana"}),  # a business rule, after a write
    ],
)
def test_the_same_input_gets_the_same_errors_as_over_http(rpc, client, api_key, path, body):
    over_http = http_post(client, api_key, path, body)
    assert over_http.status_code == 400
    error = call_error(rpc, *path.split("/"), **body)
    assert error.code == Code.INVALID_ARGUMENT
    assert without_request_id(error.problem) == without_request_id(over_http.json())
    assert names_stored() == []  # rolled back, both ways


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_number_json_cannot_carry_is_invalid_argument_naming_its_field(rpc, number):
    error = call_error(rpc, "example", "bar", name=number)
    assert error.code == Code.INVALID_ARGUMENT
    assert error.errors == {"name": ["Enter a finite number: JSON has no NaN or Infinity."]}
    assert names_stored() == []


def test_a_stream_validates_its_input_the_same_way(rpc):
    error = stream_error(rpc, "example", "numbers", count=0)
    assert error.code == Code.INVALID_ARGUMENT
    assert error.errors == {"count": ["Ensure this value is greater than or equal to 1."]}


# --- 409 ABORTED --------------------------------------------------------------------------------


def test_an_integrity_error_is_aborted_and_rolled_back(rpc):
    rpc.call("example", "bar", name="ana")
    error = call_error(rpc, "testing", "duplicate_after_insert", name="dup")
    assert error.code == Code.ABORTED
    assert error.problem["status"] == 409
    assert error.details == "The change conflicts with existing data; nothing was changed."
    assert names_stored() == ["ana"]


# --- 413 RESOURCE_EXHAUSTED ---------------------------------------------------------------------


def test_a_message_over_actions_max_body_is_resource_exhausted(settings, transactional_db):
    from apps.rpc.server import build_server

    settings.ACTIONS_MAX_BODY = 2000
    server = build_server(bind="127.0.0.1:0", workers=1)
    server.start()
    try:
        _, key = create_api_client(name="big-sender")
        with ActionsClient(f"127.0.0.1:{server.port}", key) as sender:
            assert sender.call("example", "foo", name="x" * 100)["name"] == "x" * 100
            error = call_error(sender, "example", "foo", name="x" * 2001)
    finally:
        server.stop(grace=1)
    assert error.code == Code.RESOURCE_EXHAUSTED


# --- 500 INTERNAL -------------------------------------------------------------------------------


def test_a_bug_is_internal_with_the_request_id_and_no_traceback(rpc, log_lines):
    error = call_error(rpc, "testing", "crash_after_insert", name="ana")
    assert error.code == Code.INTERNAL
    assert error.details == (
        "The server failed to answer. Quote the request id when reporting this. "
        f"Request id: {error.request_id}."
    )
    assert "secret" not in str(error.problem)
    assert error.problem["request_id"] == error.request_id
    assert names_stored() == []  # rolled back
    [logged] = log_lines(level="ERROR")
    assert logged["request_id"] == error.request_id
    assert "RuntimeError: secret internal detail" in logged["exc_info"]


# --- 502 UNAVAILABLE, 504 DEADLINE_EXCEEDED -----------------------------------------------------


def test_an_unreachable_upstream_is_unavailable(rpc, settings):
    settings.UPSTREAM_BACKOFF = 0.01
    settings.UPSTREAMS = {
        "flask": {"URL": f"http://127.0.0.1:{free_port()}", "TIMEOUT": 1, "RETRIES": 1, "TOKEN": ""}
    }
    error = call_error(rpc, "example", "hello", name="ana")
    assert error.code == Code.UNAVAILABLE
    assert error.problem["status"] == 502
    assert error.details == "The upstream service 'flask' could not be reached."


def test_a_slow_upstream_is_deadline_exceeded(rpc, settings):
    with http_upstream() as flask:
        settings.UPSTREAMS = {
            "flask": {"URL": f"{flask.url}/slow/1", "TIMEOUT": 0.2, "RETRIES": 0, "TOKEN": ""}
        }
        error = call_error(rpc, "example", "hello", name="ana")
    assert error.code == Code.DEADLINE_EXCEEDED
    assert error.problem["status"] == 504


def test_a_reachable_upstream_greets_over_grpc_too(rpc, settings):
    with http_upstream() as flask:
        settings.UPSTREAMS = {"flask": {"URL": flask.url, "TIMEOUT": 2, "RETRIES": 0, "TOKEN": ""}}
        result = rpc.with_request_id("grpc-hello-1").call("example", "hello", name="ana")
    assert result == {"name": "ana", "answer": "Hello ana!"}
    assert flask.requests[0].headers["X-Request-ID"] == "grpc-hello-1"
