"""Enrolling an authenticator, removing it and getting backup codes, through the pages."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.hits.models import HitCounter
from apps.twofactor.models import BackupCode, SealedTOTPDevice
from tests.servers import redis_client

from .conftest import (
    PASSWORD,
    backup_code_works,
    code_for,
    make_backup_codes,
    make_device,
    secret_from_page,
)

pytestmark = pytest.mark.django_db


def shown_codes(response) -> list[str]:
    return re.findall(r"<li><code>([a-z2-7]{8})</code></li>", response.content.decode())


def log_in(client, device=None, username="alice"):
    response = client.post("/account/login/", {"username": username, "password": PASSWORD})
    if device is not None:
        response = client.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 302
    return response


def test_enrolment_end_to_end(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    response = log_in(client)
    # Sent to enrol: the page shows the QR code of a key the login put in the session.
    page = client.get(response["Location"], follow=True)
    assert page.status_code == 200
    assert not SealedTOTPDevice.objects.filter(user=person).exists()  # not a device until confirmed
    html = page.content.decode()
    assert re.search(r"<svg [^>]*aria-label=\"QR code", html)
    assert "<img" not in html
    # The passkey script of "Add a passkey" beside it, a static file: no inline script.
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/passkeys.js" defer>']
    secret = secret_from_page(html)
    assert len(secret) == 32  # 160 bits of base32
    assert re.search(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", html)  # grouped by four

    # The person types the key into their app, and the app's first code confirms the device.
    phone = pyotp.TOTP(secret)
    response = client.post(response["Location"], {"code": phone.now()})
    assert response.status_code == 302
    device = SealedTOTPDevice.objects.get(user=person)
    assert device.confirmed
    overview = client.get("/account/two-factor/").content.decode()
    assert "In use" in overview

    # From now on a login asks for a code; the first one cannot be used again.
    client.post("/account/logout/")
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"].startswith("/account/login/code/")
    assert client.post("/account/login/code/", {"code": phone.now()}).status_code == 200
    SealedTOTPDevice.objects.update(
        throttling_failure_timestamp=None
    )  # the replay counted as a failure
    response = client.post("/account/login/code/", {"code": phone.at(time.time() + 30)})
    assert response.status_code == 302
    assert client.get("/account/two-factor/").status_code == 200


def test_add_authenticator_shows_a_button_until_one_is_started(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    page = client.get("/account/two-factor/add/")
    assert b"Show the QR code" in page.content
    assert b"<svg" not in page.content
    response = client.post("/account/two-factor/add/")
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/add/"
    assert b"<svg" in client.get("/account/two-factor/add/").content


def test_a_device_is_not_usable_until_confirmed(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    client.post("/account/two-factor/add/")
    client.get("/account/two-factor/add/")
    client.post("/account/logout/")
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    assert response["Location"] == "/account/two-factor/"  # no code asked


def test_a_wrong_first_code_does_not_confirm(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    client.post("/account/two-factor/add/")
    secret = secret_from_page(client.get("/account/two-factor/add/").content.decode())
    phone = pyotp.TOTP(secret)
    wrong = next(c for c in ("000000", "111111") if not phone.verify(c, valid_window=1))
    response = client.post("/account/two-factor/add/", {"code": wrong})
    assert response.status_code == 200
    assert b"That code is not valid" in response.content
    assert not SealedTOTPDevice.objects.exists()
    # The same key stays on offer: the right code still confirms it.
    response = client.post("/account/two-factor/add/", {"code": phone.now()})
    assert response.status_code == 302
    assert SealedTOTPDevice.objects.get(user=person).confirmed


def test_refreshing_add_authenticator_keeps_the_same_qr_code_and_makes_no_device(
    client, person, settings
):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    client.post("/account/two-factor/add/")
    pages = [client.get("/account/two-factor/add/").content.decode() for _ in range(3)]
    qr_codes = {re.search(r"<svg .*?</svg>", page, re.S).group(0) for page in pages}
    assert len(qr_codes) == 1
    assert len({secret_from_page(page) for page in pages}) == 1
    assert not SealedTOTPDevice.objects.exists()
    # Starting again while one is on offer keeps it, too (a double click, another tab).
    client.post("/account/two-factor/add/")
    assert secret_from_page(client.get("/account/two-factor/add/").content.decode()) in {
        secret_from_page(pages[0])
    }


def test_adding_a_second_authenticator_needs_a_verified_session(client, device):
    client.force_login(device.user)
    response = client.get("/account/two-factor/add/")
    assert response["Location"].startswith("/account/login/code/")
    assert SealedTOTPDevice.objects.filter(user=device.user).count() == 1


def test_removing_a_device_is_a_button_within_the_reauthentication_window(client, device):
    log_in(client, device)  # the code of the login opened the window
    other = make_device(device.user, name="Old phone")
    page = client.get(f"/account/two-factor/devices/{other.pk}/remove/")
    assert b'name="code"' not in page.content
    assert SealedTOTPDevice.objects.filter(pk=other.pk).exists()  # GET removes nothing
    response = client.post(f"/account/two-factor/devices/{other.pk}/remove/")
    assert response.status_code == 302
    assert not SealedTOTPDevice.objects.filter(pk=other.pk).exists()
    assert client.get("/account/two-factor/").status_code == 200  # still verified


def test_removing_the_device_used_to_log_in_keeps_the_session_verified(client, device):
    spare = make_device(device.user, name="Spare")
    log_in(client, device)
    response = client.post(f"/account/two-factor/devices/{device.pk}/remove/")
    assert response.status_code == 302
    assert client.get("/account/two-factor/").status_code == 200
    assert list(SealedTOTPDevice.objects.all()) == [spare]


def test_someone_elses_device_cannot_be_removed(client, device, django_user_model):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    bobs = make_device(bob)
    log_in(client, device)
    response = client.post(f"/account/two-factor/devices/{bobs.pk}/remove/")
    assert response.status_code == 404
    assert SealedTOTPDevice.objects.filter(pk=bobs.pk).exists()


def test_backup_codes_are_shown_once_and_each_works_once(client, device):
    log_in(client, device)
    page = client.get("/account/two-factor/backup-codes/")
    assert b'name="code"' not in page.content  # the login opened the re-authentication window
    response = client.post("/account/two-factor/backup-codes/")
    assert response.status_code == 302
    response = client.get(response["Location"])
    assert "no-store" in response["Cache-Control"]
    codes = shown_codes(response)
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


def test_regenerating_backup_codes_replaces_the_old_ones(client, device):
    make_backup_codes(device.user, ["abcd2345"])
    log_in(client, device)
    assert client.get("/account/two-factor/backup-codes/").status_code == 200
    assert backup_code_works(device.user, "abcd2345")  # GET makes nothing
    response = client.post("/account/two-factor/backup-codes/")
    assert response.status_code == 302
    assert BackupCode.objects.count() == 10
    assert not backup_code_works(device.user, "abcd2345")


def test_new_backup_codes_are_shown_after_a_redirect_and_gone_on_reload(client, device):
    log_in(client, device)
    response = client.post("/account/two-factor/backup-codes/")
    # Post/Redirect/Get: reloading the page that shows the codes makes no new ones.
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/backup-codes/"
    assert client.head("/account/two-factor/backup-codes/").status_code == 200  # takes nothing
    shown = client.get("/account/two-factor/backup-codes/")
    assert shown.status_code == 200
    codes = shown_codes(shown)
    assert all(backup_code_works(device.user, code) for code in codes)
    reloaded = client.get("/account/two-factor/backup-codes/")
    assert reloaded.status_code == 200
    assert shown_codes(reloaded) == []
    assert not any(code in reloaded.content.decode() for code in codes)
    assert "You have 10 unused backup codes." in reloaded.content.decode()
    assert BackupCode.objects.count() == 10  # the reload made no new codes


def test_one_backup_code_left_is_said_in_the_singular(client, device):
    make_backup_codes(device.user, ["abcd2345"])
    log_in(client, device)
    assert "You have 1 unused backup code." in client.get("/account/two-factor/").content.decode()
    page = client.get("/account/two-factor/backup-codes/").content.decode()
    assert "You have 1 unused backup code. New codes replace it." in page


def test_backup_codes_need_an_authenticator_first(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    log_in(client)
    page = client.get("/account/two-factor/backup-codes/")
    assert b"Add an authenticator" in page.content
    client.post("/account/two-factor/backup-codes/")
    assert not BackupCode.objects.exists()


def test_pages_fit_a_phone(client, device):
    log_in(client, device)
    html = client.get("/account/two-factor/").content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


@pytest.mark.parametrize("method", ["get", "head"])
def test_reading_the_pages_writes_nothing(client, device, method, settings):
    """GET and HEAD of every page, twice: no INSERT, UPDATE or DELETE anywhere, session included."""
    settings.TWO_FACTOR_REQUIRED = "all"
    unconfirmed = make_device(device.user, confirmed=False, name="From the app")
    make_backup_codes(device.user, ["abcd2345"])
    log_in(client, device)
    pages = [
        "/account/login/",
        "/account/login/code/",
        "/account/two-factor/",
        "/account/two-factor/add/",
        f"/account/two-factor/devices/{unconfirmed.pk}/confirm/",
        f"/account/two-factor/devices/{device.pk}/remove/",
        "/account/two-factor/backup-codes/",
        "/account/security/",
        "/account/reauthenticate/",
        "/account/password/",
        "/account/password/reset/",
        "/account/password/reset/sent/",
        "/account/password/reset/done/",
    ]
    before = SealedTOTPDevice.objects.count()
    with CaptureQueriesContext(connection) as queries:
        for _ in range(2):
            for page in pages:
                assert getattr(client, method)(page).status_code in (200, 302), page
    writes = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert SealedTOTPDevice.objects.count() == before


def test_the_headers_dbapi_link_leads_to_the_account_page_and_counts_no_hit(client, device):
    log_in(client, device)
    html = client.get("/account/two-factor/backup-codes/").content.decode()
    href = re.search(r'<a class="brand" href="([^"]+)">dbapi</a>', html).group(1)
    assert href == "/account/two-factor/"
    page = client.get(href)
    assert page.status_code == 200
    assert b"Two-factor authentication" in page.content
    assert not HitCounter.objects.exists()
    assert redis_client().keys("*hits*") == []
