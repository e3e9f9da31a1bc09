"""Logging in through the pages: password, then a code when the person has a second factor."""

from __future__ import annotations

import re
import time

import pytest
import time_machine
from django_otp import DEVICE_ID_SESSION_KEY

from apps.accounts.models import User

from .conftest import PASSWORD, code_for, make_backup_codes, wrong_code

pytestmark = pytest.mark.django_db

HTML = {"Accept": "text/html"}


def submit_password(client, username="alice", password=PASSWORD, next_url=""):
    return client.post(
        "/account/login/", {"username": username, "password": password, "next": next_url}
    )


def logged_in_user(client) -> User | None:
    response = client.get("/account/two-factor/")
    return response.wsgi_request.user if response.status_code == 200 else None


def test_the_login_page_is_a_plain_form(client):
    response = client.get("/account/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">' in html
    assert 'autocomplete="current-password"' in html
    assert "/static/css/site.css" in html
    # The password form needs no script; the only one is the passkey button's static file.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/passkeys.js" defer>']


def test_without_a_device_the_password_logs_in(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    response = submit_password(client)
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    assert logged_in_user(client) == person


def test_without_a_device_but_otp_required_the_person_is_sent_to_enrol(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    response = submit_password(client, next_url="/account/two-factor/backup-codes/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/two-factor/add/")
    assert "next=%2Faccount%2Ftwo-factor%2Fbackup-codes%2F" in response["Location"]
    enrol_page = client.get(response["Location"], follow=True)
    assert b"<svg" in enrol_page.content


def test_a_wrong_password_shows_the_form_again(client, person):
    response = submit_password(client, password="wrong")
    assert response.status_code == 200
    assert b"That username and password do not match." in response.content
    assert logged_in_user(client) is None


def test_repeated_wrong_passwords_are_throttled(client, person, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    submit_password(client, password="wrong")
    submit_password(client, password="wrong")
    response = submit_password(client)
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert logged_in_user(client) is None


def test_with_a_device_the_password_alone_does_not_log_in(client, device):
    response = submit_password(client)
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/code/")
    assert logged_in_user(client) is None
    assert b"Enter your code" in client.get(response["Location"]).content


def test_the_code_step_logs_in_verified(client, device):
    submit_password(client, next_url="/account/two-factor/backup-codes/")
    response = client.post(
        "/account/login/code/",
        {"code": code_for(device), "next": "/account/two-factor/backup-codes/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/backup-codes/"
    assert logged_in_user(client) == device.user
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id


def test_a_wrong_code_does_not_log_in(client, device):
    submit_password(client)
    response = client.post("/account/login/code/", {"code": wrong_code(device)})
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    assert logged_in_user(client) is None


def test_repeated_wrong_codes_are_throttled(client, device):
    submit_password(client)
    client.post("/account/login/code/", {"code": wrong_code(device)})
    response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 429
    assert b"Too many attempts" in response.content
    assert logged_in_user(client) is None


def test_a_throttled_code_step_says_how_long_to_wait_in_the_right_number(client, device):
    submit_password(client)
    with time_machine.travel(time.time(), tick=False) as clock:
        client.post("/account/login/code/", {"code": wrong_code(device)})
        response = client.post("/account/login/code/", {"code": code_for(device)})
        assert response.status_code == 429
        assert response["Retry-After"] == "1"
        assert "Wait 1 second, then try again." in response.content.decode()
        clock.shift(1.5)
        client.post("/account/login/code/", {"code": wrong_code(device)})  # locked for 2 s now
        response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 429
    assert response["Retry-After"] == "2"
    assert "Wait 2 seconds, then try again." in response.content.decode()
    assert logged_in_user(client) is None


def test_a_backup_code_logs_in_once(client, device):
    make_backup_codes(device.user, ["abcd2345", "efgh6723"])
    submit_password(client)
    response = client.post("/account/login/code/", {"code": "abcd2345"})
    assert response.status_code == 302
    assert logged_in_user(client) == device.user
    client.post("/account/logout/")
    submit_password(client)
    response = client.post("/account/login/code/", {"code": "abcd2345"})
    assert response.status_code == 200
    assert logged_in_user(client) is None


def test_the_code_step_needs_the_password_step(client, device):
    response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert logged_in_user(client) is None


def test_an_old_password_step_expires(client, device, settings):
    settings.OTP_LOGIN_TIMEOUT = 0
    submit_password(client)
    response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 302
    assert logged_in_user(client) is None


def test_the_pages_send_an_unverified_session_to_the_code_step(client, device):
    client.force_login(device.user)  # a session from before the person enrolled
    response = client.get("/account/two-factor/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/code/?next=/account/two-factor/")
    client.post("/account/login/code/", {"code": code_for(device)})
    assert client.get("/account/two-factor/").status_code == 200


def test_next_never_leaves_the_site(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    response = submit_password(client, next_url="https://evil.example/")
    assert response["Location"] == "/account/two-factor/"


def test_logging_out(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    submit_password(client)
    assert client.get("/account/logout/").status_code == 405  # GET must not log out
    response = client.post("/account/logout/")
    assert response.status_code == 302
    assert logged_in_user(client) is None


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get("/account/two-factor/")
    assert response.status_code == 302
    assert response["Location"] == "/account/login/?next=/account/two-factor/"


def test_the_code_step_sends_a_person_without_devices_on(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    submit_password(client)
    response = client.get("/account/login/code/?next=/account/two-factor/")
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
