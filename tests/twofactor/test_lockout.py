"""Failures capped: OTP_MAX_FAILURES consecutive wrong codes lock an account's second factor
until staff unlock it in the admin, or a backup code is used (OTP_LOCK_ALLOWS_BACKUP_CODES)."""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.accounts.models import UserToken
from apps.twofactor.models import SealedTOTPDevice, SecondFactorLock
from tests.problems import assert_problem

from .conftest import (
    PASSWORD,
    bearer,
    code_for,
    make_backup_codes,
    make_device,
    make_person,
    wrong_code,
)

pytestmark = pytest.mark.django_db

CAP = 3


@pytest.fixture(autouse=True)
def _cap(settings):
    settings.OTP_MAX_FAILURES = CAP
    settings.OTP_THROTTLE_FACTOR = 0  # so the cap, not django-otp's delays, is what is tested


def verify(client, token, code):
    return client.post(
        "/api/v1/otp/verify",
        {"token": code},
        content_type="application/json",
        headers=bearer(token),
    )


def fail(client, token, device, times: int) -> None:
    for _ in range(times):
        assert verify(client, token, wrong_code(device)).json() == {"status": False}


def is_locked(user) -> bool:
    return SecondFactorLock.objects.filter(user=user, locked_at__isnull=False).exists()


def test_the_cap_locks_the_second_factor_and_is_recorded_once(client, device, api_token, log_lines):
    fail(client, api_token, device, CAP)
    assert is_locked(device.user)
    response = verify(client, api_token, code_for(device))  # even the right code
    body = assert_problem(response, 403, type="second-factor-locked")
    assert "backup code" in body["detail"]
    assert not UserToken.objects.get().is_verified
    assert_problem(verify(client, api_token, wrong_code(device)), 403, type="second-factor-locked")
    [event] = log_lines(event="locked")
    assert event["user_id"] == device.user_id


def test_below_the_cap_nothing_is_locked(client, device, api_token):
    fail(client, api_token, device, CAP - 1)
    assert not is_locked(device.user)
    assert verify(client, api_token, code_for(device)).json() == {"status": True}


def test_a_right_code_starts_the_count_again(client, device, api_token):
    fail(client, api_token, device, CAP - 1)
    assert verify(client, api_token, code_for(device)).json() == {"status": True}
    fail(client, api_token, device, CAP - 1)
    assert not is_locked(device.user)


def test_a_right_code_resets_only_the_device_it_matched(client, device, api_token, settings):
    settings.OTP_MAX_FAILURES = 0  # no cap here: only django-otp's per-device counts
    tablet = make_device(device.user, name="Tablet")
    fail(client, api_token, device, 2)
    assert verify(client, api_token, code_for(tablet)).json() == {"status": True}
    counts = dict(SealedTOTPDevice.objects.values_list("name", "throttling_failure_count"))
    assert counts == {"Phone": 2, "Tablet": 0}


def test_a_backup_code_still_works_and_unlocks(client, device, api_token, log_lines):
    make_backup_codes(device.user, ["abcd2345"])
    fail(client, api_token, device, CAP)
    assert verify(client, api_token, "abcd2345").json() == {"status": True}
    assert not is_locked(device.user)
    assert UserToken.objects.get().is_verified
    assert verify(client, api_token, code_for(device, steps=1)).json() == {"status": True}
    [event] = log_lines(event="unlocked")
    assert event["by"] == "backup_code"


def test_backup_codes_can_be_locked_out_too(client, device, api_token, settings):
    settings.OTP_LOCK_ALLOWS_BACKUP_CODES = False
    make_backup_codes(device.user, ["abcd2345"])
    fail(client, api_token, device, CAP)
    response = verify(client, api_token, "abcd2345")
    body = assert_problem(response, 403, type="second-factor-locked")
    assert "backup code" not in body["detail"]
    assert is_locked(device.user)


def test_wrong_backup_codes_count_towards_the_cap(client, device, api_token):
    make_backup_codes(device.user, ["abcd2345"])
    for _ in range(CAP):
        assert verify(client, api_token, "zzzz2345").json() == {"status": False}
    assert is_locked(device.user)


def test_the_pages_refuse_codes_while_locked(client, device):
    fail_on_pages = {"username": "alice", "password": PASSWORD}
    client.post("/account/login/", fail_on_pages)
    for _ in range(CAP):
        client.post("/account/login/code/", {"code": wrong_code(device)})
    response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 403
    assert b"locked" in response.content
    assert client.get("/account/two-factor/").status_code == 302  # not logged in


def test_staff_unlock_a_person_in_the_admin(staff_client, client, device, api_token, log_lines):
    fail(client, api_token, device, CAP)
    response = staff_client.post(
        "/admin/accounts/user/",
        {"action": "unlock_second_factor", "_selected_action": [device.user_id]},
        follow=True,
    )
    assert b"Second factor unlocked for 1 person." in response.content
    assert not is_locked(device.user)
    assert SealedTOTPDevice.objects.get(pk=device.pk).throttling_failure_count == 0
    assert verify(client, api_token, code_for(device)).json() == {"status": True}
    [event] = log_lines(event="unlocked")
    assert event["by"] == "staff"


def test_staff_see_and_unlock_locks_in_their_own_list(staff_client, client, device, api_token):
    fail(client, api_token, device, CAP)
    listing = staff_client.get("/admin/twofactor/secondfactorlock/?locked_at__isnull=False")
    assert b"alice" in listing.content
    lock = SecondFactorLock.objects.get(user=device.user)
    staff_client.post(
        "/admin/twofactor/secondfactorlock/",
        {"action": "unlock", "_selected_action": [lock.pk]},
    )
    assert not is_locked(device.user)


def test_the_admin_login_says_the_account_is_locked(client, db):
    staff = make_person("sam", is_staff=True)
    device = make_device(staff)
    SecondFactorLock.objects.create(user=staff, consecutive_failures=CAP, locked_at=timezone.now())
    response = client.post(
        "/admin/login/",
        {"username": "sam", "password": PASSWORD, "otp_token": code_for(device)},
    )
    assert b"locked" in response.content
    assert client.get("/admin/").status_code == 302
