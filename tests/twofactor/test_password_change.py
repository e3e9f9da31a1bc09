"""Changing the password at /account/password/: the current password within the
re-authentication window; this session stays, every other session, API token and trusted
browser of the person ends. Bad inputs change nothing."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from apps.accounts.models import User, UserToken
from apps.accounts.tokens import issue_user_token
from apps.twofactor.models import TrustedBrowser

from .conftest import PASSWORD, bearer, code_for, make_person
from .logins import TRUST_COOKIE, log_in, session_user_id, submit_password, verified_by

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
NEW_PASSWORD = "a new and much longer passphrase"
WINDOW = 300


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def change(client, *, old=PASSWORD, new=NEW_PASSWORD, again=None):
    return client.post(
        "/account/password/",
        {
            "old_password": old,
            "new_password1": new,
            "new_password2": new if again is None else again,
        },
    )


def password_is(user: User, password: str) -> bool:
    user.refresh_from_db()
    return user.check_password(password)


def token_works(client, key: str) -> bool:
    return client.get("/api/v1/otp/devices", headers=bearer(key)).status_code != 401


@pytest.fixture
def elsewhere(device, clock) -> Client:
    """Another browser where the person is logged in, verified; the clock then moves on a step, so
    the test's own login has a fresh code."""
    other = Client()
    log_in(other, device)
    assert session_user_id(other) == device.user.pk
    clock.shift(dt.timedelta(seconds=30))
    return other


# --- The change -----------------------------------------------------------------------------------


def test_the_page_asks_for_the_current_password_and_the_new_one_twice(client, device, clock):
    log_in(client, device)
    response = client.get("/account/password/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="old_password"' in html
    assert 'autocomplete="current-password"' in html
    assert html.count('autocomplete="new-password"') == 2


def test_a_change_keeps_this_session_and_ends_every_other_and_every_token(
    client, device, clock, elsewhere
):
    key = issue_user_token(user=device.user).key
    log_in(client, device)
    assert token_works(client, key)

    response = change(client)

    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    assert password_is(device.user, NEW_PASSWORD)
    # This browser: still logged in, still verified by its device.
    assert session_user_id(client) == device.user.pk
    assert verified_by(client) == device.persistent_id
    # Everywhere else: logged out, and the API token is gone.
    assert session_user_id(elsewhere) is None
    assert elsewhere.get("/account/two-factor/")["Location"].startswith("/account/login/")
    assert not token_works(client, key)
    assert not UserToken.objects.filter(user=device.user).exists()


def test_a_change_ends_a_login_waiting_for_its_code(client, device, clock):
    waiting = Client()
    submit_password(waiting)  # the old password; the code step is next
    log_in(client, device, steps=1)
    change(client)
    response = waiting.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert session_user_id(waiting) is None


def test_a_change_revokes_every_trusted_browser(client, device, clock):
    trusted = Client()
    log_in(trusted, device, trust=True)
    trusted.post("/account/logout/")
    log_in(client, device, trust=True, steps=1)
    assert TrustedBrowser.objects.count() == 2

    response = change(client)

    assert not TrustedBrowser.objects.exists()
    assert response.cookies[TRUST_COOKIE].value == ""
    clock.shift(dt.timedelta(seconds=60))
    response = submit_password(trusted, password=NEW_PASSWORD)
    assert response["Location"].startswith("/account/login/code/")


def test_a_change_is_recorded_without_a_secret(client, device, clock, log_lines):
    log_in(client, device)
    change(client)
    [event] = log_lines(event="password_changed")
    assert event["user_id"] == device.user.pk
    assert PASSWORD not in str(log_lines())
    assert NEW_PASSWORD not in str(log_lines())


def test_someone_without_a_second_factor_can_change_theirs(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    submit_password(client)
    assert change(client).status_code == 302
    assert password_is(person, NEW_PASSWORD)


# --- Who may --------------------------------------------------------------------------------------


def test_the_page_needs_a_login(client, person):
    response = client.get("/account/password/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert change(client).status_code == 302
    assert password_is(person, PASSWORD)


def test_the_page_needs_the_second_factor_of_people_who_have_one(client, device):
    submit_password(client)  # the code step is next: not logged in yet
    response = change(client)
    assert response.status_code == 302
    assert password_is(device.user, PASSWORD)


def test_after_the_window_the_page_asks_to_confirm_it_is_you(client, device, clock):
    key = issue_user_token(user=device.user).key
    log_in(client, device)
    clock.shift(dt.timedelta(seconds=WINDOW + 1))
    response = change(client)
    assert response.status_code == 302
    assert response["Location"] == "/account/reauthenticate/?next=%2Faccount%2Fpassword%2F"
    assert password_is(device.user, PASSWORD)
    assert token_works(client, key)
    # Confirmed with the password: back to the page, and the change goes through.
    response = client.post(response["Location"], {"password": PASSWORD})
    assert response["Location"] == "/account/password/"
    assert change(client).status_code == 302
    assert password_is(device.user, NEW_PASSWORD)


# --- Bad inputs change nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"old": "not my password"}, "Your old password was entered incorrectly."),
        ({"again": "a different new passphrase"}, "The two password fields didn"),
        ({"new": "12345678"}, "This password is too common."),
        ({"new": "short"}, "This password is too short."),
        ({"new": "alice"}, "The password is too similar to the username."),
        ({"old": ""}, "This field is required."),
    ],
)
def test_a_bad_input_changes_nothing(client, device, clock, elsewhere, fields, message):
    key = issue_user_token(user=device.user).key
    trusted = TrustedBrowser.objects.create(
        user=device.user,
        digest="0" * 64,
        device=device.persistent_id,
        created_at=START,
        last_used_at=START,
        expires_at=START + dt.timedelta(days=30),
    )
    log_in(client, device)
    response = change(client, **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert password_is(device.user, PASSWORD)
    assert token_works(client, key)
    assert TrustedBrowser.objects.filter(pk=trusted.pk).exists()
    assert session_user_id(elsewhere) == device.user.pk
    assert session_user_id(client) == device.user.pk


def test_wrong_current_passwords_are_throttled_as_logins_are(client, device, clock, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    log_in(client, device)
    change(client, old="wrong")
    change(client, old="wrong")
    response = change(client)
    assert response.status_code == 429
    assert "Retry-After" in response
    assert password_is(device.user, PASSWORD)


def test_a_get_changes_nothing(client, device, clock):
    log_in(client, device)
    client.get("/account/password/", {"old_password": PASSWORD, "new_password1": NEW_PASSWORD})
    assert password_is(device.user, PASSWORD)


def test_another_person_is_not_touched(client, device, clock):
    bob = make_person("bob")
    key = issue_user_token(user=bob).key
    log_in(client, device)
    change(client)
    assert password_is(bob, PASSWORD)
    assert token_works(client, key)
