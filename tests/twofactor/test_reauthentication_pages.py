"""On the pages, changing factors needs the password or a code entered within
TWO_FACTOR_REAUTH_SECONDS: otherwise a "confirm it's you" step, which returns to the page asked
for. The clock is moved with time-machine; nothing sleeps."""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
import time_machine

from apps.twofactor.models import BackupCode, SealedTOTPDevice

from .conftest import PASSWORD, code_for, make_backup_codes, make_device, wrong_code

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
WINDOW = 300


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def later(clock, seconds: float) -> None:
    clock.shift(dt.timedelta(seconds=seconds))


def log_in(client, device=None, username="alice") -> None:
    client.post("/account/login/", {"username": username, "password": PASSWORD})
    if device is not None:
        response = client.post("/account/login/code/", {"code": code_for(device)})
        assert response.status_code == 302


def confirm_step(path: str) -> str:
    return f"/account/reauthenticate/?next={quote(path, safe='')}"


def pages(device) -> dict[str, str]:
    pending = make_device(device.user, confirmed=False, name="New phone")
    return {
        "add": "/account/two-factor/add/",
        "confirm": f"/account/two-factor/devices/{pending.pk}/confirm/",
        "remove": f"/account/two-factor/devices/{device.pk}/remove/",
        "backup codes": "/account/two-factor/backup-codes/",
    }


@pytest.mark.parametrize("page", ["add", "confirm", "remove", "backup codes"])
@pytest.mark.parametrize("how", ["password", "code"])
def test_after_the_window_a_factor_page_asks_to_confirm_it_is_you(client, clock, device, page, how):
    path = pages(device)[page]
    log_in(client, device)
    later(clock, WINDOW + 1)
    devices_before = SealedTOTPDevice.objects.count()

    asked = client.get(path)
    assert asked.status_code == 302
    assert asked["Location"] == confirm_step(path)
    assert SealedTOTPDevice.objects.count() == devices_before  # nothing made on the way
    step = client.get(asked["Location"])
    assert step.status_code == 200
    assert b"Confirm it" in step.content

    proof = {"password": PASSWORD} if how == "password" else {"code": code_for(device, steps=1)}
    back = client.post("/account/reauthenticate/", {**proof, "next": path})
    assert back.status_code == 302
    assert back["Location"] == path
    arrived = client.get(path, follow=True)
    assert arrived.status_code == 200
    assert b"Confirm it" not in arrived.content


def test_a_posted_change_after_the_window_is_not_made(client, clock, device):
    spare = make_device(device.user, name="Tablet")
    log_in(client, device)
    later(clock, WINDOW + 1)
    path = f"/account/two-factor/devices/{spare.pk}/remove/"
    response = client.post(path, {"code": code_for(device, steps=1)})
    assert response["Location"] == confirm_step(path)
    assert SealedTOTPDevice.objects.filter(pk=spare.pk).exists()
    response = client.post("/account/two-factor/backup-codes/", {"code": code_for(device, steps=1)})
    assert response.status_code == 302
    assert not BackupCode.objects.exists()


def test_the_window_starts_with_the_login(client, clock, device):
    log_in(client, device)
    later(clock, WINDOW - 1)
    assert client.get("/account/two-factor/backup-codes/").status_code == 200
    later(clock, 2)
    assert client.get("/account/two-factor/backup-codes/").status_code == 302


def test_a_wrong_password_or_code_keeps_the_step(client, clock, device, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    log_in(client, device)
    later(clock, WINDOW + 1)
    wrong = client.post("/account/reauthenticate/", {"password": "not it", "next": "/x"})
    assert wrong.status_code == 200
    assert b"That password is not right" in wrong.content
    wrong = client.post("/account/reauthenticate/", {"code": wrong_code(device)})
    assert b"That code is not valid" in wrong.content
    empty = client.post("/account/reauthenticate/", {})
    assert b"Type your password or a code" in empty.content
    assert client.get("/account/two-factor/add/").status_code == 302


def test_wrong_passwords_are_throttled_with_429(client, clock, device, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    log_in(client, device)
    for _ in range(2):
        client.post("/account/reauthenticate/", {"password": "not it"})
    assert client.post("/account/reauthenticate/", {"password": PASSWORD}).status_code == 429


def test_a_locked_second_factor_is_said_so(client, clock, device, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    settings.OTP_MAX_FAILURES = 2
    log_in(client, device)
    for _ in range(2):
        client.post("/account/reauthenticate/", {"code": wrong_code(device)})
    response = client.post("/account/reauthenticate/", {"code": code_for(device, steps=1)})
    assert response.status_code == 403
    assert b"locked" in response.content


def test_a_backup_code_confirms_it_is_you(client, clock, device):
    make_backup_codes(device.user, ["abcd2345"])
    log_in(client, device)
    later(clock, WINDOW + 1)
    response = client.post("/account/reauthenticate/", {"code": "abcd2345", "next": "/account/"})
    assert response.status_code == 302


def test_without_a_factor_the_step_asks_for_the_password_only(client, clock, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    later(clock, WINDOW + 1)
    step = client.get("/account/reauthenticate/")
    assert b'name="password"' in step.content
    assert b'name="code"' not in step.content


def test_the_step_needs_a_login(client, db):
    response = client.get("/account/reauthenticate/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")


def test_the_step_does_not_send_anyone_to_another_site(client, clock, device):
    log_in(client, device)
    response = client.post(
        "/account/reauthenticate/", {"password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == "/account/two-factor/"
