"""The password pages and trusted browsers in the security log: a change and a reset each
recorded once, with the request's address and browser, never a secret, and mailed to the person
(a real SMTP server the test starts); a login that a trusted browser let skip the code is a
`login` saying so."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
import time_machine
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client

from apps.accounts.tokens import issue_user_token
from apps.twofactor.models import SecurityEvent
from tests.mail import smtp_server, use_email_url

from .conftest import PASSWORD, make_device, make_person
from .logins import log_in, submit_password

# Real transactions: the mail goes out when one commits, which the test's wrapping one never does.
pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "alice@example.com"
AGENT = "TestBrowser/1.0 (passwords)"
NEW_PASSWORD = "a new and much longer passphrase"
START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def inbox(settings):
    with smtp_server() as (inbox, port):
        use_email_url(settings, f"smtp://127.0.0.1:{port}")
        yield inbox


@pytest.fixture
def device():
    return make_device(make_person(email=EMAIL))


@pytest.fixture
def browser() -> Client:
    return Client(HTTP_USER_AGENT=AGENT)


def events_of(user, kind: str) -> list[SecurityEvent]:
    return list(SecurityEvent.objects.filter(user=user, kind=kind))


def holds_no_secret(*secrets: str) -> bool:
    rows = json.dumps(list(SecurityEvent.objects.values()), cls=DjangoJSONEncoder)
    return not any(secret in rows for secret in secrets)


def test_a_password_change_is_recorded_once_and_mailed(browser, device, inbox):
    key = issue_user_token(user=device.user).key
    log_in(browser, device)
    response = browser.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302

    [event] = events_of(device.user, "password_changed")
    assert (event.ip, event.user_agent) == ("127.0.0.1", AGENT)
    [revoked] = events_of(device.user, "token_revoked")
    assert revoked.details == {"count": 1}
    assert holds_no_secret(PASSWORD, NEW_PASSWORD, key)
    [mail] = inbox.wait_for(1)
    assert mail["To"] == EMAIL
    assert "The password of your account was changed." in mail.get_content()


def test_a_refused_change_records_nothing(browser, device, inbox):
    log_in(browser, device)
    browser.post(
        "/account/password/",
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert events_of(device.user, "password_changed") == []


def test_a_password_reset_is_recorded_once_and_mailed(browser, device, inbox):
    browser.post("/account/password/reset/", {"email": EMAIL})
    [link_mail] = inbox.wait_for(1)
    link = re.search(r"http://testserver(/account/password/reset/\S+/)", link_mail.get_content())
    form_url = browser.get(link.group(1))["Location"]
    response = browser.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert response.status_code == 302

    [event] = events_of(device.user, "password_reset")
    assert (event.ip, event.user_agent) == ("127.0.0.1", AGENT)
    assert holds_no_secret(NEW_PASSWORD, link.group(1).split("/")[-2])
    notice = inbox.wait_for(2)[1]
    assert notice["To"] == EMAIL
    assert "The password of your account was reset." in notice.get_content()


def test_a_login_a_trusted_browser_let_skip_the_code_says_so(browser, device):
    with time_machine.travel(START, tick=False) as clock:
        log_in(browser, device, trust=True)
        browser.post("/account/logout/")
        clock.shift(dt.timedelta(seconds=30))
        assert submit_password(browser)["Location"] == "/account/two-factor/"
    first, trusted = SecurityEvent.objects.filter(user=device.user, kind="login").order_by("id")
    assert first.details == {"via": "pages", "second_factor": "totp"}
    assert trusted.details == {"via": "pages", "second_factor": "totp", "trusted_browser": True}
    assert trusted.user_agent == AGENT
