"""`POST /actions/batch`: several calls in order in one transaction, all or nothing."""

from __future__ import annotations

import pytest

from tests.problems import assert_problem

pytestmark = pytest.mark.django_db(databases="__all__")


def bar(name: str, email: str | None = None) -> dict:
    return {"module": "example", "action": "bar", "input": {"name": name, "email": email}}


def test_every_call_runs_in_order_and_answers_its_result(call, example_rows):
    response = call("batch", {"calls": [bar("ana", "a@example.com"), bar("bea"), bar("ana")]})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r[0]["name"] for r in results] == ["ana", "bea", "ana"]
    assert results[2][0]["email"] is None  # the third call saw the first one's row, and updated it
    assert [row[1] for row in example_rows()] == ["ana", "bea"]


def test_a_batch_whose_third_call_fails_leaves_no_row_of_the_first_two(call, example_rows):
    calls = [
        bar("ana"),
        bar("bea"),
        {"module": "testing", "action": "duplicate_after_insert", "input": {"name": "cid"}},
    ]
    problem = assert_problem(call("batch", {"calls": calls}), 409)
    assert problem["index"] == 2
    assert example_rows() == []


def test_a_call_that_fails_validation_is_named_by_its_index(call, example_rows):
    calls = [bar("ana"), {"module": "example", "action": "bar", "input": {"email": "nope"}}]
    problem = assert_problem(call("batch", {"calls": calls}), 400)
    assert problem["index"] == 1
    assert set(problem["errors"]) == {"name", "email"}
    assert example_rows() == []


def test_an_unknown_action_in_a_batch_is_404_with_its_index(call, example_rows):
    calls = [bar("ana"), {"module": "example", "action": "nosuch", "input": {}}]
    assert assert_problem(call("batch", {"calls": calls}), 404)["index"] == 1
    assert example_rows() == []


def test_each_call_is_authorised_as_a_single_call_would_be(client, example_rows):
    from apps.actions.clients import create_api_client
    from tests.actions.conftest import ActionCaller

    _, key = create_api_client(name="testing-only", allowed_modules=["testing"])
    calls = [{"module": "testing", "action": "rows", "input": {}}, bar("ana")]
    problem = assert_problem(ActionCaller(client, key)("batch", {"calls": calls}), 403)
    assert problem["index"] == 1
    assert example_rows() == []


def test_a_batch_over_the_limit_is_400(call, settings, example_rows):
    settings.ACTIONS_MAX_BATCH = 2
    problem = assert_problem(call("batch", {"calls": [bar("a"), bar("b"), bar("c")]}), 400)
    assert "calls" in problem["errors"]
    assert example_rows() == []


@pytest.mark.parametrize(
    "body",
    [{}, {"calls": []}, {"calls": "bar"}, {"calls": [{"module": "example"}]}],
    ids=["no-calls", "empty", "not-a-list", "no-action"],
)
def test_a_malformed_batch_is_400_naming_calls(call, body):
    assert "calls" in assert_problem(call("batch", body), 400)["errors"]


def test_a_batch_across_databases_is_refused_unless_allowed(call, settings, example_rows):
    calls = [
        bar("ana"),
        {"module": "testing", "action": "reporting_insert", "input": {"name": "x"}},
    ]
    assert_problem(call("batch", {"calls": calls}), 400, type="batch-spans-databases")
    assert example_rows() == []
    settings.ACTIONS_BATCH_MULTI_DB = True
    assert call("batch", {"calls": calls}).status_code == 200


def test_batch_needs_a_key_and_post(call):
    assert_problem(call("batch", {"calls": [bar("ana")]}, key=None), 401)
    assert_problem(call.client.get("/actions/batch"), 405)
