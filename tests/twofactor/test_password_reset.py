"""Resetting a forgotten password by email at /account/password/reset/: the same answer for any
address; the link sets a new password without logging in, so the next login still asks for the
second factor; API tokens and trusted browsers are revoked. Mail is read from Django's outbox."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.test import Client

from apps.accounts.models import User, UserToken
from apps.accounts.tokens import issue_user_token
from apps.core.logging import mask_secret_paths
from apps.twofactor.models import TrustedBrowser

from .conftest import PASSWORD, make_person
from .logins import TRUST_COOKIE, log_in, session_user_id, submit_code, submit_password

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
NEW_PASSWORD = "a new and much longer passphrase"
ADDRESS = "alice@example.com"
LINK = re.compile(r"http://testserver(/account/password/reset/[^/\s]+/[^/\s]+/)")


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def person(db) -> User:
    return make_person(email=ADDRESS)


def ask_for_a_link(client, address: str = ADDRESS):
    return client.post("/account/password/reset/", {"email": address})


def reset_link(mailoutbox) -> str:
    [message] = mailoutbox
    return LINK.search(message.body).group(1)


def set_new_password(client, link: str, new=NEW_PASSWORD, again=None):
    """Open the link (which moves the token into the session) and post the new password."""
    form_url = client.get(link)["Location"]
    assert form_url.endswith("/set-password/")
    data = {"new_password1": new, "new_password2": new if again is None else again}
    return client.post(form_url, data)


def password_is(user: User, password: str) -> bool:
    user.refresh_from_db()
    return user.check_password(password)


# --- Asking for a link ----------------------------------------------------------------------------


def test_the_login_page_links_to_the_reset(client):
    assert b'href="/account/password/reset/"' in client.get("/account/login/").content


def test_a_known_address_gets_a_link(client, person, mailoutbox):
    response = ask_for_a_link(client)
    assert response.status_code == 302
    assert response["Location"] == "/account/password/reset/sent/"
    [message] = mailoutbox
    assert message.to == [ADDRESS]
    assert message.subject == "Reset your password on testserver"
    assert "Hello alice," in message.body
    assert LINK.search(message.body)
    assert "still asks for your second factor" in message.body
    assert "If you did not ask for this, ignore this email" in message.body


def test_an_unknown_address_gets_the_same_answer_and_no_mail(client, person, mailoutbox):
    known = ask_for_a_link(client)
    mailoutbox.clear()
    unknown = ask_for_a_link(Client(), "nobody@example.com")
    assert (unknown.status_code, unknown["Location"]) == (known.status_code, known["Location"])
    assert mailoutbox == []
    page = client.get(known["Location"])
    assert page.status_code == 200
    assert b"If an account has that address" in page.content


def test_an_inactive_persons_address_gets_the_same_answer_and_no_mail(client, person, mailoutbox):
    person.is_active = False
    person.save()
    response = ask_for_a_link(client)
    assert (response.status_code, response["Location"]) == (302, "/account/password/reset/sent/")
    assert mailoutbox == []


def test_a_malformed_address_is_refused_and_sends_nothing(client, person, mailoutbox):
    response = ask_for_a_link(client, "not an address")
    assert response.status_code == 200
    assert b"Enter a valid email address." in response.content
    assert mailoutbox == []


def test_asking_needs_the_csrf_token(person, mailoutbox):
    response = Client(enforce_csrf_checks=True).post("/account/password/reset/", {"email": ADDRESS})
    assert response.status_code == 403
    assert mailoutbox == []


# --- Using the link -------------------------------------------------------------------------------


def test_the_link_sets_a_new_password_without_logging_in(client, person, mailoutbox):
    ask_for_a_link(client)
    response = set_new_password(client, reset_link(mailoutbox))
    assert response.status_code == 302
    assert response["Location"] == "/account/password/reset/done/"
    assert password_is(person, NEW_PASSWORD)
    assert session_user_id(client) is None
    assert b"Log in with your new password" in client.get(response["Location"]).content


def test_after_a_reset_the_login_still_asks_for_the_code(client, device, mailoutbox, clock):
    device.user.email = ADDRESS
    device.user.save()
    ask_for_a_link(client)
    set_new_password(client, reset_link(mailoutbox))
    response = submit_password(client, password=NEW_PASSWORD)
    assert response["Location"].startswith("/account/login/code/")
    assert session_user_id(client) is None
    assert submit_code(client, device).status_code == 302
    assert session_user_id(client) == device.user.pk


def test_a_reset_revokes_tokens_and_trusted_browsers(client, device, mailoutbox, clock):
    device.user.email = ADDRESS
    device.user.save()
    key = issue_user_token(user=device.user).key
    log_in(client, device, trust=True)
    client.post("/account/logout/")
    assert TRUST_COOKIE in client.cookies

    ask_for_a_link(client)
    set_new_password(client, reset_link(mailoutbox))

    assert not UserToken.objects.filter(user=device.user).exists()
    assert (
        client.get("/api/v1/otp/devices", headers={"Authorization": f"Bearer {key}"}).status_code
        == 401
    )
    assert not TrustedBrowser.objects.exists()
    # The browser trusted before the reset shows the code step again.
    clock.shift(dt.timedelta(seconds=30))
    response = submit_password(client, password=NEW_PASSWORD)
    assert response["Location"].startswith("/account/login/code/")


def test_a_reset_ends_the_sessions_opened_with_the_old_password(device, mailoutbox, clock):
    device.user.email = ADDRESS
    device.user.save()
    logged_in = Client()
    log_in(logged_in, device)
    ask_for_a_link(Client())
    set_new_password(Client(), reset_link(mailoutbox))
    assert session_user_id(logged_in) is None


def test_a_reset_is_recorded_without_a_secret(client, person, mailoutbox, log_lines):
    ask_for_a_link(client)
    link = reset_link(mailoutbox)
    set_new_password(client, link)
    [event] = log_lines(event="password_reset")
    assert event["user_id"] == person.pk
    everything = str(log_lines())
    assert NEW_PASSWORD not in everything
    assert link.split("/")[-2] not in everything  # the token


def test_a_link_works_once(client, person, mailoutbox):
    ask_for_a_link(client)
    link = reset_link(mailoutbox)
    set_new_password(client, link)
    other = Client()
    response = other.get(link)
    assert response.status_code == 200
    assert b"This link does not work" in response.content
    again = "yet another passphrase 42"
    other.post(link, {"new_password1": again, "new_password2": again})
    assert password_is(person, NEW_PASSWORD)


def test_a_link_ends_when_the_password_changes_otherwise(client, person, mailoutbox):
    ask_for_a_link(client)
    link = reset_link(mailoutbox)
    person.set_password("changed in between 1234")
    person.save()
    response = client.get(link)
    assert b"This link does not work" in response.content
    assert password_is(person, "changed in between 1234")


def test_an_altered_link_does_not_work(client, person, mailoutbox):
    ask_for_a_link(client)
    link = reset_link(mailoutbox)
    response = client.get(link[:-2] + ("x/" if link[-2] != "x" else "y/"))
    assert response.status_code == 200
    assert b"This link does not work" in response.content
    assert password_is(person, PASSWORD)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"again": "a different new passphrase"}, "The two password fields didn"),
        ({"new": "12345678"}, "This password is too common."),
        ({"new": "short"}, "This password is too short."),
        ({"new": ""}, "This field is required."),
    ],
)
def test_a_bad_new_password_changes_nothing(client, device, mailoutbox, clock, fields, message):
    device.user.email = ADDRESS
    device.user.save()
    key = issue_user_token(user=device.user).key
    log_in(client, device, trust=True)
    client.post("/account/logout/")
    ask_for_a_link(client)
    response = set_new_password(client, reset_link(mailoutbox), **fields)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert password_is(device.user, PASSWORD)
    assert UserToken.objects.filter(user=device.user, digest__isnull=False).exists()
    assert (
        client.get("/api/v1/otp/devices", headers={"Authorization": f"Bearer {key}"}).status_code
        != 401
    )
    assert TrustedBrowser.objects.exists()


# --- Limits ---------------------------------------------------------------------------------------


def test_too_many_requests_from_one_client_are_refused(person, mailoutbox, settings):
    settings.PASSWORD_RESET_LIMIT = 2
    client = Client()
    for address in ("one@example.com", "two@example.com"):
        assert ask_for_a_link(client, address).status_code == 302
    response = ask_for_a_link(client)
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= settings.PASSWORD_RESET_WINDOW
    assert b"Too many attempts. Wait" in response.content
    assert mailoutbox == []


def test_too_many_mails_to_one_address_are_not_sent_and_the_answer_stays_the_same(
    person, mailoutbox, settings
):
    settings.PASSWORD_RESET_LIMIT = 2
    answers = [ask_for_a_link(Client(REMOTE_ADDR=f"192.0.2.{n}")) for n in range(1, 4)]
    assert [(a.status_code, a["Location"]) for a in answers] == [
        (302, "/account/password/reset/sent/")
    ] * 3
    assert len(mailoutbox) == 2


def test_the_limits_start_again_with_the_next_window(person, mailoutbox, settings, clock):
    settings.PASSWORD_RESET_LIMIT = 1
    settings.PASSWORD_RESET_WINDOW = 3600
    client = Client()
    ask_for_a_link(client)
    assert ask_for_a_link(client).status_code == 429
    clock.shift(dt.timedelta(hours=1))
    assert ask_for_a_link(client).status_code == 302
    assert len(mailoutbox) == 2


def test_no_limit_with_zero(person, mailoutbox, settings):
    settings.PASSWORD_RESET_LIMIT = 0
    client = Client()
    for _ in range(8):
        assert ask_for_a_link(client).status_code == 302
    assert len(mailoutbox) == 8


def test_a_reset_links_token_is_masked_in_every_log_line_that_quotes_its_path(
    client, person, mailoutbox
):
    ask_for_a_link(client)
    link = reset_link(mailoutbox)
    token = link.split("/")[-2]
    assert mask_secret_paths(f"GET {link} HTTP/1.1") == (
        "GET /account/password/reset/[masked] HTTP/1.1"
    )
    assert token not in mask_secret_paths(link.replace("reset", "r%65set"))
