"""The verify path's hand-written statements (apps/twofactor/sql.py) match the models they read and
write: a field added to or removed from a model, or from the django-otp mixins under the devices,
fails here before it fails in production."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from apps.accounts.models import User, UserToken
from apps.twofactor import sql
from apps.twofactor.models import SealedTOTPDevice, SecondFactorLock

pytestmark = pytest.mark.django_db

ALIASES = {"t": UserToken, "u": User, "l": SecondFactorLock, "d": SealedTOTPDevice}


def columns(model) -> list[str]:
    return [field.column for field in model._meta.concrete_fields]


def selected() -> list[tuple[str, str]]:
    """(alias, column) of each column the read selects, in order."""
    select = sql.SQL_BEARER_WITH_TOTP_DEVICES.split("FROM")[0].removeprefix("\nSELECT")
    return [tuple(item.strip().split(".")) for item in select.split(",")]


@pytest.mark.parametrize(
    ("model", "listed"),
    [
        (UserToken, sql.TOKEN_COLUMNS),
        (SecondFactorLock, sql.LOCK_COLUMNS),
        (SealedTOTPDevice, sql.DEVICE_COLUMNS),
    ],
    ids=["token", "lock", "device"],
)
def test_the_read_lists_every_column_of_the_rows_it_builds(model, listed):
    assert sorted(listed) == sorted(columns(model))


def test_the_person_columns_exist():
    assert set(sql.PERSON_COLUMNS) <= set(columns(User))


def test_the_read_selects_the_listed_columns_in_order():
    expected = [
        *(("t", name) for name in sql.TOKEN_COLUMNS),
        *(("u", name) for name in sql.PERSON_COLUMNS),
        *(("l", name) for name in sql.LOCK_COLUMNS),
        *(("d", name) for name in sql.DEVICE_COLUMNS),
    ]
    assert selected() == expected


def test_the_statements_name_the_models_tables():
    tables = re.findall(
        r"(?:FROM|JOIN|UPDATE)\s+(\w+)(?:\s+(\w)\b)?", sql.SQL_BEARER_WITH_TOTP_DEVICES
    )
    for table, alias in tables:
        assert ALIASES[alias]._meta.db_table == table
    written = re.findall(r"UPDATE\s+(\w+)", sql.SQL_ACCEPT_TOTP_STEP_AND_MARK_BEARER)
    assert written == [SealedTOTPDevice._meta.db_table, UserToken._meta.db_table]


def test_the_write_sets_columns_that_exist():
    statement = sql.SQL_ACCEPT_TOTP_STEP_AND_MARK_BEARER
    for name in sql.ACCEPT_DEVICE_COLUMNS:
        assert name in columns(SealedTOTPDevice)
        assert f"{name} = " in statement
    for name in sql.MARK_TOKEN_COLUMNS:
        assert name in columns(UserToken)
        assert f"{name} = " in statement


def test_the_database_has_every_column_the_statements_use():
    with connection.cursor() as cursor:
        for model in ALIASES.values():
            table = model._meta.db_table
            found = {c.name for c in connection.introspection.get_table_description(cursor, table)}
            assert set(columns(model)) <= found, table
