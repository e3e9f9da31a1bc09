"""`Prefer: tx=rollback`: the call or batch runs whole, answers as usual, and leaves nothing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

DRY = {"Prefer": "tx=rollback"}


def test_a_dry_run_answers_as_usual_and_leaves_no_row(call, example_rows):
    response = call("example/bar", {"name": "ana", "email": "a@example.com"}, headers=DRY)
    assert response.status_code == 200
    assert response["Preference-Applied"] == "tx=rollback"
    [row] = response.json()
    assert (row["name"], row["email"]) == ("ana", "a@example.com")
    assert example_rows() == []


def test_a_dry_batch_leaves_nothing(call, example_rows):
    calls = [{"module": "example", "action": "bar", "input": {"name": n}} for n in ("a", "b")]
    response = call("batch", {"calls": calls}, headers=DRY)
    assert response.status_code == 200
    assert response["Preference-Applied"] == "tx=rollback"
    assert len(response.json()["results"]) == 2
    assert example_rows() == []


def test_other_preferences_are_ignored(call, example_rows):
    response = call("example/bar", {"name": "ana"}, headers={"Prefer": "return=minimal"})
    assert "Preference-Applied" not in response
    assert len(example_rows()) == 1


def test_a_dry_run_among_other_preferences_is_applied(call, example_rows):
    headers = {"Prefer": "respond-async, tx=rollback; strict, wait=5"}
    assert call("example/bar", {"name": "ana"}, headers=headers)["Preference-Applied"]
    assert example_rows() == []
