"""The admin demands a verified second factor from staff, and lets them manage devices."""

from __future__ import annotations

import re
import time

import pytest
import time_machine

from apps.accounts.models import UserToken
from apps.twofactor.models import BackupCodeDevice, SealedTOTPDevice

from .conftest import PASSWORD, code_for, make_backup_codes, make_device, make_person

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_member(db):
    return make_person("sam", is_staff=True, is_superuser=True)


def admin_login(client, *, code="", username="sam", password=PASSWORD):
    return client.post(
        "/admin/login/",
        {"username": username, "password": password, "otp_token": code, "next": "/admin/"},
    )


def test_staff_with_only_a_password_session_cannot_reach_the_admin(client, staff_member):
    client.force_login(staff_member)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_staff_with_a_device_but_an_unverified_session_cannot_reach_the_admin(client, staff_member):
    make_device(staff_member)
    client.force_login(staff_member)
    assert client.get("/admin/accounts/user/").status_code == 302


def test_the_admin_login_refuses_a_password_without_a_code(client, staff_member):
    make_device(staff_member)
    response = admin_login(client)
    assert response.status_code == 200
    assert b"Enter the code from your authenticator app" in response.content
    assert client.get("/admin/").status_code == 302


def test_the_admin_login_refuses_a_wrong_code(client, staff_member):
    device = make_device(staff_member)
    other = {code_for(device, steps=s) for s in (-1, 0, 1)}
    response = admin_login(client, code=next(c for c in ("000000", "111111") if c not in other))
    assert b"That code is not valid" in response.content
    assert client.get("/admin/").status_code == 302


def test_the_admin_login_answers_429_with_retry_after_while_codes_are_throttled(
    client, staff_member
):
    device = make_device(staff_member)
    other = {code_for(device, steps=s) for s in (-1, 0, 1)}
    with time_machine.travel(time.time(), tick=False):  # the 1 s lock lasts the whole test
        admin_login(client, code=next(c for c in ("000000", "111111") if c not in other))
        response = admin_login(client, code=code_for(device))  # right, but throttled
    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert b"Too many attempts. Wait 1 second, then try again." in response.content
    assert client.get("/admin/").status_code == 302


def test_the_admin_login_with_password_and_code_opens_the_admin(client, staff_member):
    device = make_device(staff_member)
    response = admin_login(client, code=code_for(device))
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_admin_login_accepts_a_backup_code(client, staff_member):
    make_device(staff_member)
    make_backup_codes(staff_member, ["abcd2345"])
    assert admin_login(client, code="abcd2345").status_code == 302
    assert client.get("/admin/").status_code == 200


def test_staff_without_a_device_are_told_to_enrol_first(client, staff_member):
    response = admin_login(client, code="123456")
    assert b"The admin needs a second factor" in response.content
    assert client.get("/admin/").status_code == 302


def test_a_verified_person_who_is_not_staff_cannot_reach_the_admin(client, device):
    client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    client.post("/account/login/code/", {"code": code_for(device)})
    assert client.get("/account/two-factor/").status_code == 200
    assert client.get("/admin/").status_code == 302


def test_a_login_verified_on_the_pages_also_opens_the_admin(client, staff_member):
    device = make_device(staff_member)
    client.post("/account/login/", {"username": "sam", "password": PASSWORD})
    client.post("/account/login/code/", {"code": code_for(device)})
    assert client.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/accounts/user/",
        "/admin/accounts/usertoken/",
        "/admin/twofactor/sealedtotpdevice/",
        "/admin/twofactor/sealedtotpdevice/add/",
        "/admin/twofactor/backupcodedevice/",
    ],
)
def test_staff_manage_people_and_devices(staff_client, path):
    assert staff_client.get(path).status_code == 200


def test_staff_show_a_devices_qr_code_at_a_desk(staff_client, person):
    device = make_device(person, confirmed=False)
    response = staff_client.get(f"/admin/twofactor/sealedtotpdevice/{device.pk}/config/")
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r"<svg [^>]*role=\"img\"", html)
    assert "<path" in html
    assert re.search(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", html)


def test_the_qr_code_page_can_be_turned_off(staff_client, person, settings):
    settings.OTP_ADMIN_HIDE_SENSITIVE_DATA = True
    device = make_device(person)
    response = staff_client.get(f"/admin/twofactor/sealedtotpdevice/{device.pk}/config/")
    assert response.status_code == 403


def test_staff_reset_a_persons_second_factor(staff_client, person):
    make_device(person)
    make_backup_codes(person, ["abcd2345"])
    UserToken.objects.create(
        user=person, digest="d" * 64, key_prefix="dddd", expires_at="2999-01-01T00:00Z"
    )
    response = staff_client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [person.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Two-factor authentication reset for 1 person:" in response.content
    assert not SealedTOTPDevice.objects.filter(user=person).exists()
    assert not BackupCodeDevice.objects.filter(user=person).exists()
    assert not UserToken.objects.filter(user=person).exists()
    assert SealedTOTPDevice.objects.exclude(user=person).exists()  # the staff member's stays


def test_staff_revoke_a_token(staff_client, person):
    token = UserToken.objects.create(
        user=person, digest="e" * 64, key_prefix="eeee", expires_at="2999-01-01T00:00Z"
    )
    response = staff_client.post(
        f"/admin/accounts/usertoken/{token.pk}/delete/", {"post": "yes"}, follow=True
    )
    assert response.status_code == 200
    assert not UserToken.objects.filter(pk=token.pk).exists()
