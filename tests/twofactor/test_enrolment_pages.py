"""Enrolling an authenticator, removing it and getting backup codes, through the pages."""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from apps.twofactor.models import BackupCode, BackupCodeDevice, SealedTOTPDevice

from .conftest import (
    PASSWORD,
    backup_code_works,
    code_for,
    make_backup_codes,
    make_device,
    secret_from_page,
)

pytestmark = pytest.mark.django_db


def log_in(client, device=None, username="alice"):
    response = client.post("/account/login/", {"username": username, "password": PASSWORD})
    if device is not None:
        response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 302
    return response


def test_enrolment_end_to_end(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    response = log_in(client)
    # Sent to enrol: "add authenticator" makes an unconfirmed device and shows its QR code.
    page = client.get(response["Location"], follow=True)
    assert page.status_code == 200
    device = SealedTOTPDevice.objects.get(user=person)
    assert not device.confirmed
    html = page.content.decode()
    assert re.search(r"<svg [^>]*aria-label=\"QR code", html)
    assert "<img" not in html
    assert "<script" not in html
    secret = secret_from_page(html)
    assert len(secret) == 32  # 160 bits of base32
    assert re.search(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", html)  # grouped by four

    # The person types the key into their app, and the app's first code confirms the device.
    phone = pyotp.TOTP(secret)
    confirm_url = page.redirect_chain[-1][0]
    response = client.post(confirm_url, {"code": phone.now()})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    overview = client.get("/account/two-factor/").content.decode()
    assert "In use" in overview

    # From now on a login asks for a code.
    client.post("/account/logout/")
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"].startswith("/account/login/code/")
    response = client.post("/account/login/code/", {"code": phone.at(time.time() + 30)})
    assert response.status_code == 302
    assert client.get("/account/two-factor/").status_code == 200


def test_a_device_is_not_usable_until_confirmed(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    client.get("/account/two-factor/add/")
    client.post("/account/logout/")
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"] == "/account/two-factor/"  # no code asked


def test_a_wrong_first_code_does_not_confirm(client, person):
    log_in(client)
    page = client.get("/account/two-factor/add/", follow=True)
    device = SealedTOTPDevice.objects.get(user=person)
    response = client.post(page.redirect_chain[-1][0], {"code": "12345"})
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    device.refresh_from_db()
    assert not device.confirmed


def test_reloading_add_keeps_the_same_key(client, person):
    log_in(client)
    first = secret_from_page(client.get("/account/two-factor/add/", follow=True).content.decode())
    again = secret_from_page(client.get("/account/two-factor/add/", follow=True).content.decode())
    assert first == again
    assert SealedTOTPDevice.objects.filter(user=person).count() == 1


def test_adding_a_second_authenticator_needs_a_verified_session(client, device):
    client.force_login(device.user)
    response = client.get("/account/two-factor/add/")
    assert response["Location"].startswith("/account/login/code/")
    assert SealedTOTPDevice.objects.filter(user=device.user).count() == 1


def test_removing_a_device_asks_for_a_current_code(client, device):
    log_in(client, device)
    other = make_device(device.user, name="Old phone")
    page = client.get(f"/account/two-factor/devices/{other.pk}/remove/")
    assert b"type a current code" in page.content
    response = client.post(f"/account/two-factor/devices/{other.pk}/remove/", {"code": "000000"})
    assert response.status_code in (200, 429)
    assert SealedTOTPDevice.objects.filter(pk=other.pk).exists()
    SealedTOTPDevice.objects.update(throttling_failure_timestamp=None)
    response = client.post(
        f"/account/two-factor/devices/{other.pk}/remove/", {"code": code_for(device, steps=1)}
    )
    assert response.status_code == 302
    assert not SealedTOTPDevice.objects.filter(pk=other.pk).exists()
    assert client.get("/account/two-factor/").status_code == 200  # still verified


def test_removing_the_device_used_to_log_in_keeps_the_session_verified(client, device):
    spare = make_device(device.user, name="Spare")
    log_in(client, device)
    response = client.post(
        f"/account/two-factor/devices/{device.pk}/remove/", {"code": code_for(device, steps=1)}
    )
    assert response.status_code == 302
    assert client.get("/account/two-factor/").status_code == 200
    assert list(SealedTOTPDevice.objects.all()) == [spare]


def test_someone_elses_device_cannot_be_removed(client, device, django_user_model):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    bobs = make_device(bob)
    log_in(client, device)
    response = client.post(
        f"/account/two-factor/devices/{bobs.pk}/remove/", {"code": code_for(device, steps=1)}
    )
    assert response.status_code == 404
    assert SealedTOTPDevice.objects.filter(pk=bobs.pk).exists()


def test_backup_codes_are_shown_once_and_each_works_once(client, device):
    log_in(client, device)
    page = client.get("/account/two-factor/backup-codes/")
    assert b"type a current code" in page.content
    response = client.post("/account/two-factor/backup-codes/", {"code": code_for(device, steps=1)})
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    codes = re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert not any(code.isdigit() for code in codes)
    later = client.get("/account/two-factor/backup-codes/").content.decode()
    assert not any(code in later for code in codes)
    assert "10 unused backup codes" in later

    client.post("/account/logout/")
    client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert client.post("/account/login/code/", {"code": codes[0]}).status_code == 302
    client.post("/account/logout/")
    client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert client.post("/account/login/code/", {"code": codes[0]}).status_code == 200
    assert BackupCode.objects.count() == 9


def test_regenerating_backup_codes_needs_a_code_and_replaces_the_old_ones(client, device):
    make_backup_codes(device.user, ["abcd2345"])
    log_in(client, device)
    response = client.post("/account/two-factor/backup-codes/", {"code": "wrong-code"})
    assert b"That code is not valid" in response.content
    assert BackupCode.objects.count() == 1
    assert backup_code_works(device.user, "abcd2345")
    SealedTOTPDevice.objects.update(throttling_failure_timestamp=None)
    BackupCodeDevice.objects.update(throttling_failure_timestamp=None)
    response = client.post("/account/two-factor/backup-codes/", {"code": code_for(device, steps=1)})
    assert response.status_code == 200
    assert BackupCode.objects.count() == 10
    assert not backup_code_works(device.user, "abcd2345")


def test_backup_codes_need_an_authenticator_first(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    page = client.get("/account/two-factor/backup-codes/")
    assert b"Add an authenticator" in page.content
    client.post("/account/two-factor/backup-codes/", {"code": "abcd2345"})
    assert not BackupCode.objects.exists()


def test_pages_fit_a_phone(client, device):
    log_in(client, device)
    html = client.get("/account/two-factor/").content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
