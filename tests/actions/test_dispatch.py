"""POST /actions/<module>/<action>: every answer in the README's table, and on every failure the
database is left as it was."""

from __future__ import annotations

import json

import pytest

from apps.actions.clients import create_api_client, revoke_api_client
from apps.actions.models import ApiClient
from tests.actions.conftest import ActionCaller
from tests.problems import assert_problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana(call):
    """A stored row, so that 'nothing changed' compares against a non-empty table."""
    assert call("example/bar", {"name": "ana", "email": "ana@example.com"}).status_code == 200


# --- Success -------------------------------------------------------------------------------------


def test_module_ping_answers_true(call):
    response = call("example/")
    assert response.status_code == 200
    assert response.json() is True


def test_an_action_returning_an_iterator_answers_every_row(call):
    assert call("testing/rows").json() == [{"n": n} for n in range(1, 6)]


# --- 401 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc.def"],
    ids=["absent", "empty", "no-key", "blank-key", "basic", "other-scheme"],
)
def test_missing_bearer_key_is_401(client, example_rows, ana, authorization):
    before = example_rows()
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.post(
        "/actions/example/bar", {"name": "bob"}, content_type="application/json", headers=headers
    )
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert example_rows() == before


@pytest.mark.parametrize(
    "key",
    ["0123456789ab.not-a-real-secret", "no-dot-at-all", "short.prefix", ".", "x" * 500],
)
def test_unknown_key_is_401_invalid_token(call, example_rows, ana, key):
    before = example_rows()
    response = call("example/bar", {"name": "bob"}, key=key)
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert example_rows() == before


def test_right_prefix_wrong_secret_is_401(call, api_key, example_rows):
    prefix = api_key.split(".")[0]
    assert_problem(call("example/bar", {"name": "bob"}, key=f"{prefix}.guessed-secret"), 401)
    assert example_rows() == []


def test_revoked_key_is_401_at_once_even_though_it_was_cached(call, api_key, example_rows):
    assert call("example/foo", {"name": "ana"}).status_code == 200  # now cached
    revoke_api_client(ApiClient.objects.get())
    response = call("example/bar", {"name": "bob"})
    assert_problem(response, 401)
    assert example_rows() == []


# --- 403, 404, 405 -------------------------------------------------------------------------------


def test_key_restricted_to_other_modules_is_403(client, example_rows):
    _, key = create_api_client(name="reporting", allowed_modules=["testing"])
    caller_post = client.post
    for path in ["/actions/example/bar", "/actions/example/"]:
        response = caller_post(
            path,
            {"name": "bob"},
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert "example" in assert_problem(response, 403)["detail"]
    assert example_rows() == []


def test_key_restricted_to_the_module_may_call_it(client):
    _, key = create_api_client(name="example-only", allowed_modules=["example"])
    response = ActionCaller(client, key)("example/foo", {"name": "ana"})
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["nosuch/foo", "nosuch/", "example/nosuch", "example/foo/"])
def test_unknown_module_or_action_is_404(call, example_rows, path):
    assert_problem(call(path, {"name": "ana"}), 404)
    assert example_rows() == []


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete", "options", "head"])
def test_methods_other_than_post_are_405_with_allow_post(client, api_key, example_rows, method):
    response = client.generic(
        method.upper(),
        "/actions/example/bar",
        json.dumps({"name": "ana"}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    if method != "head":
        assert_problem(response, 405)
    assert example_rows() == []


# --- 415, 400, 413 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x", ""],
)
def test_body_that_is_not_json_is_415(call, example_rows, content_type):
    assert_problem(call("example/bar", '{"name": "ana"}', content_type=content_type), 415)
    assert example_rows() == []


def test_json_with_a_charset_is_accepted(call):
    response = call("example/foo", {"name": "ana"}, content_type="application/json; charset=utf-8")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    ['{"name": "ana"', "", "not json", b"\xff\xfe{}", "[" * 100_000],
    ids=["truncated", "empty", "text", "not-utf8", "nested-too-deep"],
)
def test_malformed_json_is_400(call, example_rows, body):
    body_json = assert_problem(call("example/bar", body), 400)
    assert "not valid JSON" in body_json["detail"]
    assert example_rows() == []


@pytest.mark.parametrize(
    "body",
    ['{"name": NaN}', '{"name": Infinity}', '{"name": -Infinity}', '{"name": 1e999999}'],
    ids=["nan", "infinity", "minus-infinity", "overflowing"],
)
def test_a_number_json_cannot_carry_is_400_naming_its_field(call, example_rows, body):
    errors = assert_problem(call("example/bar", body), 400)["errors"]
    assert errors == {"name": ["Enter a finite number: JSON has no NaN or Infinity."]}
    assert example_rows() == []


def test_a_non_finite_number_deep_in_the_input_is_named_where_it_is(call):
    body = '{"name": "ana", "extra": {"values": [1, 2.5, 1e400]}}'
    errors = assert_problem(call("example/bar", body), 400)["errors"]
    assert errors == {
        "extra": {"values": {"2": ["Enter a finite number: JSON has no NaN or Infinity."]}}
    }


@pytest.mark.parametrize("body", ["[]", '["ana"]', '"ana"', "42", "null", "true"])
def test_json_that_is_not_an_object_is_400(call, example_rows, body):
    assert (
        assert_problem(call("example/bar", body), 400)["detail"]
        == "The body must be a JSON object."
    )
    assert example_rows() == []


def test_invalid_input_is_400_with_errors_per_field(call, example_rows, ana):
    before = example_rows()
    body = assert_problem(call("example/bar", {"name": "x" * 101, "email": "not-an-email"}), 400)
    assert set(body["errors"]) == {"name", "email"}
    assert body["errors"]["email"] == ["Enter a valid email address."]
    assert example_rows() == before


def test_missing_required_field_is_400(call, example_rows):
    assert assert_problem(call("example/bar", {"email": "a@example.com"}), 400)["errors"] == {
        "name": ["This field is required."]
    }
    assert example_rows() == []


def test_body_over_the_limit_is_413(call, example_rows, settings):
    settings.ACTIONS_MAX_BODY = 100
    body = json.dumps({"name": "ana", "email": "a" * 120 + "@example.com"})
    assert "100 bytes" in assert_problem(call("example/bar", body), 413)["detail"]
    assert example_rows() == []


def test_body_at_the_limit_is_accepted(call, settings):
    body = json.dumps({"name": "ana"})
    settings.ACTIONS_MAX_BODY = len(body)
    assert call("example/bar", body).status_code == 200


# --- 409, 400 from the action, 500: the transaction is rolled back -------------------------------


def test_integrity_error_is_409_and_the_transaction_rolled_back(call, example_rows, ana):
    before = example_rows()
    body = assert_problem(call("testing/duplicate_after_insert", {"name": "bob"}), 409)
    assert "nothing was changed" in body["detail"]
    assert example_rows() == before  # bob's first insert was undone too


def test_validation_error_raised_by_an_action_is_400_and_rolled_back(call, example_rows):
    body = assert_problem(call("testing/refuse_after_insert", {"name": "bob"}), 400)
    assert body["errors"] == {"name": ["This name is reserved."]}
    assert example_rows() == []


def test_crash_is_500_problem_with_request_id_no_traceback_and_rolled_back(call, example_rows):
    response = call(
        "testing/crash_after_insert", {"name": "bob"}, headers={"X-Request-ID": "r-500"}
    )
    body = assert_problem(response, 500)
    assert body["request_id"] == "r-500"
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content
    assert example_rows() == []
