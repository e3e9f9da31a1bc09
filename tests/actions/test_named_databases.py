"""An action declared with `using=<alias>` runs in a transaction on that database."""

import pytest
from django.db import connections

pytestmark = pytest.mark.django_db(databases=["default", "reporting"])


def names(alias: str) -> list[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT name FROM example_user ORDER BY name")
        return [row[0] for row in cursor.fetchall()]


def test_the_action_writes_to_its_own_database_only(call):
    response = call("testing/reporting_insert", {"name": "ana"})
    assert response.status_code == 200
    assert response.json() == 1
    assert names("reporting") == ["ana"]
    assert names("default") == []


def test_a_failure_rolls_back_that_database(call):
    call("testing/reporting_insert", {"name": "ana"})
    assert call("testing/reporting_insert", {"name": "fail"}).status_code == 500
    assert names("reporting") == ["ana"]
