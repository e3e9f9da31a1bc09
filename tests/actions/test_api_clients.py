"""API clients: keys issued once and stored hashed, checked without a query, revocable."""

from __future__ import annotations

import base64
import datetime as dt
import io

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.credentials import secret_digest
from apps.actions.clients import create_api_client
from apps.actions.models import ApiClient
from tests.actions.conftest import ActionCaller

pytestmark = pytest.mark.django_db


def run_command(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_client", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def stored_values() -> str:
    """Every column of every API client row, as text: where a leaked key would show."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM actions_apiclient")
        return repr(cursor.fetchall())


# --- Creating keys --------------------------------------------------------------------------------


def test_command_prints_a_key_that_works_and_stores_only_its_hash(client):
    key, message = run_command("billing")
    assert "shown only this once" in message
    assert key not in stored_values()
    assert key.split(".")[1] not in stored_values()
    assert ApiClient.objects.get(name="billing").key_hash == secret_digest(key)
    response = ActionCaller(client, key)("example/foo", {"name": "ana"})
    assert response.status_code == 200


def test_keys_carry_256_random_bits_and_differ():
    keys = {run_command(f"service-{n}")[0] for n in range(5)}
    assert len(keys) == 5
    for key in keys:
        secret = key.split(".", 1)[1]
        assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) >= 32


def test_command_restricts_to_modules():
    run_command("reporting", "--modules", "example, testing")
    assert ApiClient.objects.get(name="reporting").allowed_modules == ["example", "testing"]


def test_command_refuses_unknown_modules():
    with pytest.raises(CommandError, match="Unknown action modules: nosuch"):
        run_command("reporting", "--modules", "example,nosuch")
    assert not ApiClient.objects.exists()


def test_command_refuses_a_name_in_use():
    run_command("billing")
    with pytest.raises(CommandError, match="already exists"):
        run_command("billing")
    assert ApiClient.objects.count() == 1


# --- Checking keys --------------------------------------------------------------------------------


def test_a_verified_key_costs_no_query_on_later_calls(call):
    assert call("example/foo", {"name": "ana"}).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert call("example/foo", {"name": "ana"}).status_code == 200
    assert len(queries) == 0


def test_last_used_at_is_written_at_most_once_a_minute(call):
    with time_machine.travel(dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC), tick=False):
        call("example/foo", {"name": "ana"})
        first = ApiClient.objects.get().last_used_at
        assert first == timezone.now()
    with time_machine.travel(dt.datetime(2026, 11, 26, 12, 0, 30, tzinfo=dt.UTC), tick=False):
        with CaptureQueriesContext(connection) as queries:
            call("example/foo", {"name": "ana"})
        assert len(queries) == 0
        assert ApiClient.objects.get().last_used_at == first
        cache.clear()  # verified again from the database, but within the minute: not rewritten
        call("example/foo", {"name": "ana"})
        assert ApiClient.objects.get().last_used_at == first
    # Past the minute the cached verification has expired: verified again, and recorded.
    with time_machine.travel(dt.datetime(2026, 11, 26, 12, 1, 5, tzinfo=dt.UTC), tick=False):
        cache.clear()  # the cache's own clock is Redis's, which time-machine cannot move
        call("example/foo", {"name": "ana"})
        assert ApiClient.objects.get().last_used_at == timezone.now()


def test_a_key_is_checked_against_the_database_when_the_cache_is_down(call, redis_down):
    assert call("example/foo", {"name": "ana"}).status_code == 200
    assert call("example/foo", {"name": "ana"}, key="0123456789ab.wrong").status_code == 401


def test_revoking_works_while_the_cache_is_down(staff_client, call, redis_down):
    assert call("example/foo", {"name": "ana"}).status_code == 200
    api_client = ApiClient.objects.get()
    response = staff_client.post(
        "/admin/actions/apiclient/",
        {"action": "revoke", "_selected_action": [api_client.pk]},
    )
    assert response.status_code == 302
    assert ApiClient.objects.get().is_active is False
    assert call("example/foo", {"name": "ana"}).status_code == 401


# --- The admin ------------------------------------------------------------------------------------


def test_admin_creates_a_client_and_shows_its_key_once(staff_client, client):
    response = staff_client.post(
        "/admin/actions/apiclient/add/",
        {"name": "mobile-app", "is_active": "on", "allowed_modules": ["example"]},
    )
    assert response.status_code == 200
    created = ApiClient.objects.get(name="mobile-app")
    assert created.allowed_modules == ["example"]
    key = response.context["key"]
    assert key.encode() in response.content
    assert "shown only this once" in response.content.decode()
    assert key not in stored_values()
    # Not shown again: neither on the client's page nor in the list.
    for page in ["/admin/actions/apiclient/", f"/admin/actions/apiclient/{created.pk}/change/"]:
        assert key.split(".")[1].encode() not in staff_client.get(page).content
    answer = ActionCaller(client, key)("example/foo", {"name": "ana"})
    assert answer.status_code == 200


def test_admin_restriction_applies_at_once(staff_client, call):
    assert call("example/foo", {"name": "ana"}).status_code == 200  # cached as allowed
    api_client = ApiClient.objects.get()
    response = staff_client.post(
        f"/admin/actions/apiclient/{api_client.pk}/change/",
        {"name": api_client.name, "is_active": "on", "allowed_modules": ["testing"]},
    )
    assert response.status_code == 302
    assert call("example/foo", {"name": "ana"}).status_code == 403
    assert call("testing/rows").status_code == 200


def test_admin_revoke_action_applies_at_once(staff_client, call):
    assert call("example/foo", {"name": "ana"}).status_code == 200
    api_client = ApiClient.objects.get()
    response = staff_client.post(
        "/admin/actions/apiclient/",
        {"action": "revoke", "_selected_action": [api_client.pk]},
        follow=True,
    )
    assert "Revoked 1 API client" in response.content.decode()
    assert call("example/foo", {"name": "ana"}).status_code == 401


def test_admin_unticking_active_revokes(staff_client, call):
    call("example/foo", {"name": "ana"})
    api_client = ApiClient.objects.get()
    staff_client.post(
        f"/admin/actions/apiclient/{api_client.pk}/change/", {"name": api_client.name}
    )
    assert ApiClient.objects.get().is_active is False
    assert call("example/foo", {"name": "ana"}).status_code == 401


def test_admin_deleting_a_client_refuses_its_key_at_once(staff_client, call):
    call("example/foo", {"name": "ana"})
    api_client = ApiClient.objects.get()
    staff_client.post(f"/admin/actions/apiclient/{api_client.pk}/delete/", {"post": "yes"})
    assert not ApiClient.objects.exists()
    assert call("example/foo", {"name": "ana"}).status_code == 401


def test_admin_lists_clients_with_prefix_and_modules(staff_client):
    create_api_client(name="billing", allowed_modules=["example"])
    page = staff_client.get("/admin/actions/apiclient/").content.decode()
    client_row = ApiClient.objects.get()
    assert "billing" in page
    assert client_row.key_prefix in page
    assert client_row.key_hash not in page
