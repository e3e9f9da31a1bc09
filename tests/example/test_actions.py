"""The example module's own contract: what each of its actions takes and answers.

(How any action is called — keys, errors, batches, keys for idempotency — is tested in
tests/actions; `hello`'s upstream in tests/core/test_upstreams.py.)
"""

from __future__ import annotations

import re

import pytest

from tests.problems import assert_problem

pytestmark = pytest.mark.django_db

ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def test_foo_answers_name_email_and_time(call):
    response = call("example/foo", {"name": "ana", "email": "ana@example.com"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert (body["name"], body["email"]) == ("ana", "ana@example.com")
    assert ISO_8601.fullmatch(body["time"])


def test_foo_email_is_optional(call):
    assert call("example/foo", {"name": "ana"}).json()["email"] is None


def test_foo_touches_no_database(call, example_rows):
    call("example/foo", {"name": "ana"})
    assert example_rows() == []


def test_bar_inserts_then_updates_one_row_per_name(call, example_rows):
    first = call("example/bar", {"name": "ana", "email": "ana@example.com"}).json()
    second = call("example/bar", {"name": "ana", "email": "ana@example.org"}).json()
    assert len(first) == len(second) == 1
    assert second[0]["id"] == first[0]["id"]
    assert second[0]["email"] == "ana@example.org"
    assert set(second[0]) == {"id", "name", "email", "created_at"}
    assert example_rows() == [(first[0]["id"], "ana", "ana@example.org")]


def test_bar_refuses_a_bad_email_and_stores_nothing(call, example_rows):
    errors = assert_problem(call("example/bar", {"name": "ana", "email": "nope"}), 400)["errors"]
    assert errors == {"email": ["Enter a valid email address."]}
    assert example_rows() == []


def test_numbers_answers_the_rows_one_to_count(call):
    rows = call("example/numbers", {"count": 3}).json()
    assert rows == [
        {"n": 1, "label": "row 1"},
        {"n": 2, "label": "row 2"},
        {"n": 3, "label": "row 3"},
    ]


@pytest.mark.parametrize("count", [0, 1_000_001, "many"])
def test_numbers_takes_one_to_a_million(call, count):
    assert "count" in assert_problem(call("example/numbers", {"count": count}), 400)["errors"]


def test_wait_answers_within_its_one_second_timeout(call):
    assert call("example/wait", {"seconds": 0.1}).json() == {"slept": 0.1}


def test_wait_past_its_timeout_is_504(call):
    assert_problem(call("example/wait", {"seconds": 3}), 504, "statement-timeout")


@pytest.mark.parametrize("seconds", [-1, 10.5, "long"])
def test_wait_takes_up_to_ten_seconds(call, seconds):
    assert "seconds" in assert_problem(call("example/wait", {"seconds": seconds}), 400)["errors"]
