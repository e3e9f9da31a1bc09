"""The mobile API does what the pages do: list, add and remove authenticators and generate backup
codes, each behind a recent password or code (re-authentication) and the TWO_FACTOR_REQUIRED
policy, every refusal a typed problem+json."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine

from apps.accounts.models import UserToken
from apps.twofactor.models import BackupCode, Passkey, SealedTOTPDevice
from tests.problems import assert_problem

from .conftest import (
    PASSWORD,
    backup_code_works,
    bearer,
    code_for,
    make_backup_codes,
    make_device,
    make_person,
    wrong_code,
)

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
WINDOW = 300  # TWO_FACTOR_REAUTH_SECONDS' default


@pytest.fixture
def clock():
    """A clock the test moves: no sleeping through re-authentication windows."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def later(clock, seconds: float) -> None:
    clock.shift(dt.timedelta(seconds=seconds))


def call(client, method, path, token, body=None):
    kwargs = {"headers": bearer(token)}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def log_in(client, username="alice") -> str:
    response = client.post(
        "/api/v1/auth/token",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    return response.json()["token"]


def verified_token(client, device, username="alice") -> str:
    token = log_in(client, username)
    assert call(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device)}).json()[
        "status"
    ]
    return token


def reauthenticate(client, token, **body):
    return call(client, "post", "/api/v1/auth/reauthenticate", token, body)


# --- Re-authentication ----------------------------------------------------------------------------

# What needs a recent password or code, for a person with an authenticator and a verified token.
SENSITIVE = {
    "add an authenticator": ("post", "/api/v1/otp/devices", {}),
    "remove an authenticator": ("delete", "/api/v1/otp/devices/{device}", None),
    "generate backup codes": ("post", "/api/v1/otp/backup-codes", {}),
}


@pytest.mark.parametrize("action", SENSITIVE, ids=list(SENSITIVE))
@pytest.mark.parametrize("how", ["password", "code"])
def test_after_the_window_a_change_needs_the_password_or_a_code_again(
    client, clock, device, action, how
):
    token = verified_token(client, device)
    method, path, body = SENSITIVE[action]
    path = path.format(device=device.pk)
    later(clock, WINDOW + 1)
    devices_before = list(SealedTOTPDevice.objects.values_list("pk", "confirmed"))

    refused = call(client, method, path, token, body)
    problem = assert_problem(refused, 403, type="reauthentication-required")
    assert "auth/reauthenticate" in problem["detail"]
    assert list(SealedTOTPDevice.objects.values_list("pk", "confirmed")) == devices_before
    assert not BackupCode.objects.exists()

    proof = {"password": PASSWORD} if how == "password" else {"code": code_for(device, steps=1)}
    answer = reauthenticate(client, token, **proof)
    assert answer.status_code == 200
    assert answer.json()["status"] is True
    until = dt.datetime.fromisoformat(answer.json()["reauthenticated_until"])
    assert until == START + dt.timedelta(seconds=2 * WINDOW + 1)
    assert call(client, method, path, token, body).status_code in (201, 204)


def test_registering_a_passkey_after_the_window_needs_it_again(client, clock, device):
    token = verified_token(client, device)
    later(clock, WINDOW + 1)
    options = "/api/v1/passkeys/register/options"
    assert_problem(call(client, "post", options, token), 403, type="reauthentication-required")
    assert reauthenticate(client, token, password=PASSWORD).json()["status"] is True
    assert call(client, "post", options, token).json()["challenge"]


def test_removing_a_passkey_after_the_window_needs_it_again(client, clock, device):
    key = Passkey.objects.create(
        user=device.user, name="Key", credential_id=b"id", public_key=b"pk", user_handle=b"h"
    )
    token = verified_token(client, device)
    later(clock, WINDOW + 1)
    path = f"/api/v1/passkeys/{key.pk}"
    assert_problem(call(client, "delete", path, token), 403, type="reauthentication-required")
    assert Passkey.objects.filter(pk=key.pk).exists()
    assert reauthenticate(client, token, code=code_for(device, steps=1)).json()["status"] is True
    assert call(client, "delete", path, token).status_code == 204


def test_confirming_an_enrolment_after_the_window_needs_it_again(client, clock, person):
    token = log_in(client)
    new = call(client, "post", "/api/v1/otp/devices", token, {}).json()
    device = SealedTOTPDevice.objects.get(pk=new["id"])
    later(clock, WINDOW + 1)
    confirm = f"/api/v1/otp/devices/{device.pk}/confirm"
    refused = call(client, "post", confirm, token, {"token": code_for(device)})
    assert_problem(refused, 403, type="reauthentication-required")
    assert not SealedTOTPDevice.objects.get(pk=device.pk).confirmed
    assert reauthenticate(client, token, password=PASSWORD).json()["status"] is True
    confirmed = call(client, "post", confirm, token, {"token": code_for(device)})
    assert confirmed.json() == {"status": True}


def test_a_tokens_first_window_starts_when_it_is_issued(client, clock, person):
    token = log_in(client)
    later(clock, WINDOW - 1)
    assert call(client, "post", "/api/v1/otp/devices", token, {}).status_code == 201
    later(clock, 2)
    refused = call(client, "post", "/api/v1/otp/devices", token, {})
    assert_problem(refused, 403, type="reauthentication-required")


def test_a_code_accepted_by_verify_opens_a_new_window(client, clock, device):
    token = verified_token(client, device)
    later(clock, WINDOW + 1)
    body = {"token": code_for(device, steps=1)}
    assert call(client, "post", "/api/v1/otp/verify", token, body).json() == {"status": True}
    assert call(client, "post", "/api/v1/otp/backup-codes", token, {}).status_code == 201


def test_a_wrong_password_or_code_opens_no_window(client, clock, device, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    token = verified_token(client, device)
    later(clock, WINDOW + 1)
    wrong_password = reauthenticate(client, token, password="not it")
    assert wrong_password.json() == {"status": False, "reauthenticated_until": None}
    assert reauthenticate(client, token, code=wrong_code(device)).json()["status"] is False
    refused = call(client, "post", "/api/v1/otp/backup-codes", token, {})
    assert_problem(refused, 403, type="reauthentication-required")


def test_wrong_passwords_are_throttled_as_at_login(client, clock, device, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    token = verified_token(client, device)
    for _ in range(2):
        assert reauthenticate(client, token, password="not it").json()["status"] is False
    throttled = reauthenticate(client, token, password=PASSWORD)
    assert_problem(throttled, 429)
    assert int(throttled["Retry-After"]) >= 1


def test_reauthentication_is_recorded(client, clock, device, log_lines):
    token = verified_token(client, device)
    reauthenticate(client, token, password=PASSWORD)
    [event] = log_lines(event="reauthenticated")
    assert (event["user_id"], event["by"]) == (device.user_id, "password")
    assert PASSWORD not in str(log_lines())


@pytest.mark.parametrize(
    "body", [{}, {"password": PASSWORD, "code": "123456"}, {"code": "12"}], ids=str
)
def test_reauthenticate_takes_a_password_or_a_code(client, device, body):
    token = log_in(client)
    response = reauthenticate(client, token, **body)
    assert_problem(response, 400)
    assert UserToken.objects.get().reauthenticated_at is not None  # unchanged, from the login


def test_reauthenticate_needs_a_token(client, db):
    assert_problem(client.post("/api/v1/auth/reauthenticate", {}, "application/json"), 401)


# --- Devices --------------------------------------------------------------------------------------


def test_a_second_enrolment_says_which_unfinished_one_it_replaced(client, person):
    token = log_in(client)
    first = call(client, "post", "/api/v1/otp/devices", token, {"name": "Old phone"}).json()
    assert first["replaced"] is None
    second = call(client, "post", "/api/v1/otp/devices", token, {"name": "New phone"}).json()
    assert second["replaced"] == {"id": first["id"], "name": "Old phone"}
    assert list(SealedTOTPDevice.objects.values_list("pk", flat=True)) == [second["id"]]


def test_the_enrolment_answer_is_never_cached(client, person):
    response = call(client, "post", "/api/v1/otp/devices", log_in(client), {})
    assert "no-store" in response["Cache-Control"]


def test_removing_an_authenticator(client, device, log_lines):
    spare = make_device(device.user, name="Tablet")
    token = verified_token(client, device)
    response = call(client, "delete", f"/api/v1/otp/devices/{spare.pk}", token)
    assert response.status_code == 204
    assert list(SealedTOTPDevice.objects.values_list("pk", flat=True)) == [device.pk]
    [event] = log_lines(event="device_removed")
    assert event["device_id"] == spare.pk


def test_removing_needs_a_verified_token(client, device):
    token = log_in(client)
    response = call(client, "delete", f"/api/v1/otp/devices/{device.pk}", token)
    assert_problem(response, 403)
    assert SealedTOTPDevice.objects.filter(pk=device.pk).exists()


def test_someone_elses_authenticator_cannot_be_removed(client, device):
    bobs = make_device(make_person("bob"))
    token = verified_token(client, device)
    assert_problem(call(client, "delete", f"/api/v1/otp/devices/{bobs.pk}", token), 404)
    assert SealedTOTPDevice.objects.filter(pk=bobs.pk).exists()


# --- Backup codes ---------------------------------------------------------------------------------


def test_backup_codes_are_answered_once_and_each_works_once(client, device, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    token = verified_token(client, device)
    response = call(client, "post", "/api/v1/otp/backup-codes", token, {})
    assert response.status_code == 201
    assert "no-store" in response["Cache-Control"]
    codes = response.json()["codes"]
    assert len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-7]{8}", code) and not code.isdigit() for code in codes)
    # Nothing shows them again.
    listed = call(client, "get", "/api/v1/otp/devices", token).content.decode()
    assert not any(code in listed for code in codes)

    other = log_in(client)
    verify = "/api/v1/otp/verify"
    assert call(client, "post", verify, other, {"token": codes[0]}).json() == {"status": True}
    assert call(client, "post", verify, log_in(client), {"token": codes[0]}).json() == {
        "status": False
    }


def test_a_new_set_of_backup_codes_voids_the_old_one(client, device):
    make_backup_codes(device.user, ["abcd2345"])
    token = verified_token(client, device)
    codes = call(client, "post", "/api/v1/otp/backup-codes", token, {}).json()["codes"]
    assert not backup_code_works(device.user, "abcd2345")
    assert all(backup_code_works(device.user, code) for code in codes)
    assert BackupCode.objects.count() == 10


def test_backup_codes_need_a_verified_token(client, device):
    token = log_in(client)
    assert_problem(call(client, "post", "/api/v1/otp/backup-codes", token, {}), 403)
    assert not BackupCode.objects.exists()


def test_backup_codes_need_an_authenticator(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    make_backup_codes(person, ["abcd2345"])  # left over after the authenticator was removed
    token = log_in(client)
    assert call(client, "post", "/api/v1/otp/verify", token, {"token": "abcd2345"}).json() == {
        "status": True
    }
    response = call(client, "post", "/api/v1/otp/backup-codes", token, {})
    assert "add one first" in assert_problem(response, 403, type="enrolment-required")["detail"]
    assert not BackupCode.objects.exists()
