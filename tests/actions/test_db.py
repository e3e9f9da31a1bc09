"""Db, the SQL helper of actions, on PostgreSQL and on SQLite."""

from __future__ import annotations

import contextlib

import pytest
from django.db import connection, transaction
from django.db.utils import ConnectionHandler

from apps.actions import Db, UnsafeQuery

TABLE = {
    "postgresql": """
        CREATE TABLE items (
            id SERIAL PRIMARY KEY, sku TEXT NOT NULL UNIQUE, qty INTEGER NOT NULL DEFAULT 0,
            note TEXT
        )""",
    "sqlite": """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY AUTOINCREMENT, sku TEXT NOT NULL UNIQUE,
            qty INTEGER NOT NULL DEFAULT 0, note TEXT
        )""",
}


@pytest.fixture(params=["postgresql", "sqlite"])
def items_db(request, django_db_blocker):
    """A Db over a connection with an empty `items` table, on each backend."""
    if request.param == "postgresql":
        request.getfixturevalue("db")  # the test runs in a transaction that is rolled back
        yield _with_table(Db(connection), request.param)
        return
    lite = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
    )["default"]
    with django_db_blocker.unblock():
        yield _with_table(Db(lite), request.param)
        lite.close()


def _with_table(db: Db, vendor: str) -> Db:
    db.execute(TABLE[vendor])
    return db


def all_items(db: Db) -> list[dict]:
    return db.fetch_all("SELECT sku, qty, note FROM items ORDER BY sku")


def test_insert_returns_the_whole_row(items_db):
    row = items_db.insert("items", {"sku": "a-1", "qty": 3})
    assert row == {"id": row["id"], "sku": "a-1", "qty": 3, "note": None}


def test_insert_returning_some_columns_or_none(items_db):
    assert items_db.insert("items", {"sku": "a-1"}, returning=["sku", "qty"]) == {
        "sku": "a-1",
        "qty": 0,
    }
    assert items_db.insert("items", {"sku": "a-2"}, returning="id")["id"] > 0
    assert items_db.insert("items", {"sku": "a-3"}, returning=None) is None
    assert len(all_items(items_db)) == 3


def test_upsert_inserts_then_updates_the_same_row(items_db):
    first = items_db.upsert("items", {"sku": "a-1", "qty": 1}, conflict=["sku"])
    second = items_db.upsert("items", {"sku": "a-1", "qty": 5}, conflict=["sku"])
    assert second["id"] == first["id"]
    assert second["qty"] == 5
    assert all_items(items_db) == [{"sku": "a-1", "qty": 5, "note": None}]


def test_upsert_updates_only_the_named_columns(items_db):
    items_db.insert("items", {"sku": "a-1", "qty": 1, "note": "keep"})
    row = items_db.upsert(
        "items", {"sku": "a-1", "qty": 9, "note": "lost"}, conflict=["sku"], update=["qty"]
    )
    assert (row["qty"], row["note"]) == (9, "keep")


def test_upsert_with_nothing_to_update_returns_the_existing_row_unchanged(items_db):
    existing = items_db.insert("items", {"sku": "a-1", "qty": 7})
    assert items_db.upsert("items", {"sku": "a-1"}, conflict=["sku"]) == existing
    assert (
        items_db.upsert("items", {"sku": "a-1", "qty": 1}, conflict=["sku"], update=[]) == existing
    )


def test_upsert_needs_conflict_columns(items_db):
    with pytest.raises(UnsafeQuery):
        items_db.upsert("items", {"sku": "a-1"}, conflict=[])


def test_update_changes_matching_rows_and_counts_them(items_db):
    for sku in ["a-1", "a-2", "b-1"]:
        items_db.insert("items", {"sku": sku, "note": "x" if sku.startswith("a") else None})
    assert items_db.update("items", {"qty": 4}, where={"note": "x"}) == 2
    assert items_db.update("items", {"qty": 8}, where={"note": None}) == 1  # None means IS NULL
    assert [r["qty"] for r in all_items(items_db)] == [4, 4, 8]


def test_delete_removes_matching_rows_and_counts_them(items_db):
    items_db.insert("items", {"sku": "a-1"})
    items_db.insert("items", {"sku": "a-2"})
    assert items_db.delete("items", where={"sku": "a-1"}) == 1
    assert items_db.delete("items", where={"sku": "nope"}) == 0
    assert [r["sku"] for r in all_items(items_db)] == ["a-2"]


@pytest.mark.parametrize("method", ["update", "delete"])
def test_update_and_delete_refuse_an_empty_where(items_db, method):
    items_db.insert("items", {"sku": "a-1"})
    args = ({"qty": 1},) if method == "update" else ()
    with pytest.raises(UnsafeQuery, match="where"):
        getattr(items_db, method)("items", *args, where={})
    assert len(all_items(items_db)) == 1


def test_fetch_one_and_fetch_value(items_db):
    items_db.insert("items", {"sku": "a-1", "qty": 2})
    assert items_db.fetch_one("SELECT sku, qty FROM items WHERE sku = %s", ["a-1"]) == {
        "sku": "a-1",
        "qty": 2,
    }
    assert items_db.fetch_one("SELECT sku FROM items WHERE sku = %s", ["zzz"]) is None
    assert items_db.fetch_value("SELECT count(*) FROM items") == 1
    assert items_db.fetch_value("SELECT qty FROM items WHERE sku = %(sku)s", {"sku": "zzz"}) is None


def test_fetch_all_takes_named_or_positional_parameters(items_db):
    items_db.insert("items", {"sku": "a-1", "qty": 2})
    named = items_db.fetch_all("SELECT sku FROM items WHERE qty = %(qty)s", {"qty": 2})
    positional = items_db.fetch_all("SELECT sku FROM items WHERE qty = %s", [2])
    assert named == positional == [{"sku": "a-1"}]


def test_execute_counts_changed_rows(items_db):
    items_db.insert("items", {"sku": "a-1"})
    assert items_db.execute("UPDATE items SET qty = qty + %s", [1]) == 1


def test_iterate_yields_every_row(items_db):
    for n in range(25):
        items_db.insert("items", {"sku": f"s-{n:02}", "qty": n})
    rows = list(items_db.iterate("SELECT qty FROM items ORDER BY qty", batch=7))
    assert rows == [{"qty": n} for n in range(25)]


def test_values_are_parameters_even_when_they_look_like_sql(items_db):
    hostile = "x'); DROP TABLE items; --"
    items_db.insert("items", {"sku": hostile})
    items_db.update("items", {"note": hostile}, where={"sku": hostile})
    assert all_items(items_db) == [{"sku": hostile, "qty": 0, "note": hostile}]


@pytest.mark.parametrize(
    "name",
    [
        "items; DROP TABLE items",
        'items" --',
        "items`",
        "it ems",
        "1items",
        "",
        "a.b.c",
        "items.",
        "x" * 64,
        "ítems",
        "items\x00",
    ],
)
def test_identifier_injection_is_refused(items_db, name):
    items_db.insert("items", {"sku": "a-1"})
    attempts = [
        lambda: items_db.insert(name, {"sku": "b"}),
        lambda: items_db.insert("items", {name: "b"}),
        lambda: items_db.insert("items", {"sku": "b"}, returning=[name]),
        lambda: items_db.upsert("items", {"sku": "b"}, conflict=[name]),
        lambda: items_db.upsert("items", {"sku": "b"}, conflict=["sku"], update=[name]),
        lambda: items_db.update("items", {name: 1}, where={"sku": "a-1"}),
        lambda: items_db.update("items", {"qty": 1}, where={name: "a-1"}),
        lambda: items_db.delete(name, where={"sku": "a-1"}),
        lambda: items_db.delete("items", where={name: "a-1"}),
    ]
    for attempt in attempts:
        with pytest.raises(UnsafeQuery):
            attempt()
    assert all_items(items_db) == [{"sku": "a-1", "qty": 0, "note": None}]


def test_identifiers_are_quoted_by_the_connection(items_db):
    # A reserved word works as a column name because the connection quotes it.
    items_db.execute('CREATE TABLE "order" (id INTEGER PRIMARY KEY, "select" TEXT)')
    items_db.insert("order", {"id": 1, "select": "yes"})
    assert items_db.fetch_value('SELECT "select" FROM "order"') == "yes"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("disabled", "in_transaction", "declared"),
    [(False, False, 1), (True, False, 0), (False, True, 1), (True, True, 1)],
    ids=["default", "disabled outside a transaction", "in one", "disabled in one"],
)
def test_iterate_declares_a_server_side_cursor_only_where_it_can(
    monkeypatch, disabled, in_transaction, declared
):
    """Outside a transaction a server-side cursor is declared WITH HOLD, which PgBouncer's
    transaction pooling cannot keep: DISABLE_SERVER_SIDE_CURSORS reads those rows with a plain
    cursor; inside a transaction the rows still stream."""
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", disabled)
    db = Db(connection)
    with transaction.atomic() if in_transaction else contextlib.nullcontext():
        rows = db.iterate("SELECT n FROM generate_series(1, 5) AS n", batch=2)
        assert next(rows) == {"n": 1}
        open_cursors = db.fetch_value("SELECT count(*) FROM pg_cursors")
        assert list(rows) == [{"n": n} for n in range(2, 6)]
    assert open_cursors == declared
