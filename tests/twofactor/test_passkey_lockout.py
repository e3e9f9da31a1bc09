"""A locked second factor refuses a passkey as it refuses a code (issue #16: OTP_MAX_FAILURES
wrong codes lock the account's second-factor step until staff unlock it): on the code step and
"Confirm it's you" of the pages, and over the API with a token, with the same 403 as a code,
before anything is checked or counted. A passwordless sign-in is not that step and stays open."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY

from apps.accounts.models import UserToken
from apps.twofactor.models import Passkey, SecondFactorLock, SecurityEvent
from tests.problems import assert_problem

from .authenticator import SoftAuthenticator
from .conftest import PASSWORD, bearer, code_for, wrong_code
from .test_passkey_pages import add_passkey, log_in, options, sign_in
from .test_passkeys_api import API, new_token, post, register

pytestmark = pytest.mark.django_db

CAP = 3
SECOND_STEP_OPTIONS = "/account/login/passkey/second-factor/options/"


@pytest.fixture(autouse=True)
def _cap(settings):
    settings.OTP_MAX_FAILURES = CAP
    settings.OTP_THROTTLE_FACTOR = 0  # so the cap, not django-otp's delays, is what is tested


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def passkey(device, authenticator) -> Passkey:
    """A passkey beside the person's authenticator, added on the two-factor page."""
    browser = Client()
    log_in(browser, device.user)
    session = browser.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id  # as after the code step
    session.save()
    assert add_passkey(browser, authenticator).status_code == 302
    return Passkey.objects.get(user=device.user)


def lock(client, device) -> None:
    """CAP wrong codes in a row, over the API, as someone who has the password would type them."""
    token = new_token(device.user)
    for _ in range(CAP):
        body = {"token": wrong_code(device)}
        assert post(client, "/api/v1/otp/verify", body, token).json() == {"status": False}
    assert SecondFactorLock.objects.get(user=device.user).is_locked


def unlock(staff_client, user) -> None:
    response = staff_client.post(
        "/admin/accounts/user/", {"action": "unlock_second_factor", "_selected_action": [user.pk]}
    )
    assert response.status_code == 302
    assert not SecondFactorLock.objects.get(user=user).is_locked


def untouched(passkey: Passkey) -> bool:
    """Nothing was checked or counted on the passkey: no use, no failure."""
    passkey.refresh_from_db()
    return (passkey.sign_count, passkey.last_used_at, passkey.throttling_failure_count) == (
        0,
        None,
        0,
    )


# --- Pages ------------------------------------------------------------------------------------


def test_the_code_step_refuses_a_passkey_while_locked_until_staff_unlock(
    device, passkey, authenticator, staff_client
):
    browser = Client()
    lock(browser, device)
    browser.post("/account/login/", {"username": "alice", "password": PASSWORD})
    answer = {"passkey": json.dumps(authenticator.get(options(browser, SECOND_STEP_OPTIONS)))}
    recorded = SecurityEvent.objects.count()

    response = browser.post("/account/login/code/", answer)

    assert response.status_code == 403
    assert "second factor is locked. Ask staff to unlock it" in response.content.decode()
    assert "_auth_user_id" not in browser.session
    assert untouched(passkey)
    assert SecurityEvent.objects.count() == recorded  # no failure, no login

    unlock(staff_client, device.user)
    # Nothing was spent: the same answer, to the same challenge, now passes.
    response = browser.post("/account/login/code/", answer)
    assert response.status_code == 302
    assert browser.get("/account/two-factor/").status_code == 200


def test_confirm_its_you_refuses_a_passkey_while_locked(device, passkey, authenticator):
    browser = Client()
    browser.force_login(device.user)
    session = browser.session
    session[DEVICE_ID_SESSION_KEY] = passkey.persistent_id  # verified by the passkey
    session.save()
    lock(browser, device)
    answer = authenticator.get(options(browser, SECOND_STEP_OPTIONS))

    response = browser.post(
        "/account/reauthenticate/?next=/account/two-factor/", {"passkey": json.dumps(answer)}
    )

    assert response.status_code == 403
    assert "second factor is locked" in response.content.decode()
    assert not SecurityEvent.objects.filter(kind="reauthenticated").exists()
    assert untouched(passkey)


def test_a_passwordless_sign_in_still_works_while_locked(client, device, passkey, authenticator):
    lock(client, device)
    response = sign_in(client, authenticator)
    assert response.status_code == 302
    assert client.get("/account/two-factor/").status_code == 200


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def api_passkey(device, authenticator) -> Passkey:
    """A passkey registered over the API beside the person's authenticator."""
    client = Client()
    token = new_token(device.user)
    code = {"token": code_for(device)}
    assert post(client, "/api/v1/otp/verify", code, token).json() == {"status": True}
    return register(client, token, authenticator)


def test_the_api_refuses_a_passkey_as_second_factor_while_locked_until_staff_unlock(
    client, device, api_passkey, authenticator, staff_client
):
    # `client` is `staff_client`'s too: the API calls carry their token, not its session.
    token = new_token(device.user)
    request = post(client, f"{API}/authenticate/options", token=token).json()
    lock(client, device)
    answer = authenticator.get(request)

    refused = post(client, f"{API}/authenticate", answer, token)

    body = assert_problem(refused, 403, type="second-factor-locked")
    assert "passkeys" in body["detail"]
    assert "backup code" in body["detail"]
    assert not UserToken.objects.get(key_prefix=token[:8]).is_verified
    assert untouched(api_passkey)
    # Asking for new options is refused too, before the person touches their authenticator.
    assert_problem(
        post(client, f"{API}/authenticate/options", token=token), 403, type="second-factor-locked"
    )

    unlock(staff_client, device.user)
    assert post(client, f"{API}/authenticate", answer, token).json() == {"status": True}
    assert UserToken.objects.get(key_prefix=token[:8]).is_verified


def test_without_backup_codes_the_locked_answer_does_not_offer_them(
    client, device, api_passkey, authenticator, settings
):
    settings.OTP_LOCK_ALLOWS_BACKUP_CODES = False
    token = new_token(device.user)
    request = post(client, f"{API}/authenticate/options", token=token).json()
    lock(client, device)
    body = assert_problem(
        post(client, f"{API}/authenticate", authenticator.get(request), token),
        403,
        type="second-factor-locked",
    )
    assert "backup code" not in body["detail"]


def test_a_passwordless_sign_in_over_the_api_still_works_while_locked(
    client, device, api_passkey, authenticator
):
    lock(client, device)
    request = post(client, f"{API}/authenticate/options").json()
    response = post(client, f"{API}/authenticate", authenticator.get(request))
    assert response.status_code == 201
    issued = response.json()["token"]
    assert client.get(API, headers=bearer(issued)).status_code == 200
