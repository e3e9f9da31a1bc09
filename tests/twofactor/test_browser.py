"""A real browser enrols an authenticator by scanning the page's QR code, as a phone would, then
gets backup codes, all under the pages' Content-Security-Policy without a single violation.

Headless Debian Chromium (Playwright, `make test` installs it) against the project under
gunicorn: log in, open "Add authenticator", screenshot the QR code, decode the PNG with zxing-cpp,
compute the code from the decoded URI and confirm the device through the form.
"""

from __future__ import annotations

import io
import re
from base64 import b32encode

import pyotp
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect

from apps.twofactor.models import SealedTOTPDevice
from tests.browser import WatchedPage, chromium
from tests.servers import gunicorn, project_env

from .conftest import PASSWORD, backup_code_works, make_person

PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def decode_qr(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1, f"expected one QR code in the screenshot, found {len(results)}"
    return results[0].text


def test_scanning_the_enrolment_qr_code_gives_a_working_authenticator():
    person = make_person("alice")
    # Database work happens outside the Playwright block: its event loop would make Django
    # refuse synchronous queries.
    with gunicorn(env=project_env(TWO_FACTOR_REQUIRED="none")) as base_url, chromium() as browser:
        tab = WatchedPage(browser, viewport=PHONE)
        page = tab.page
        page.goto(f"{base_url}/account/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

        page.get_by_role("button", name="Add authenticator").click()
        qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
        expect(qr).to_be_visible()
        box = qr.bounding_box()
        assert 200 <= box["width"] <= PHONE["width"]  # big enough to scan, fits the phone
        uri = decode_qr(qr.screenshot())
        shown_secret = page.locator("#secret").inner_text()
        page.reload()  # the same QR code again, nothing made
        assert decode_qr(qr.screenshot()) == uri

        phone = pyotp.parse_uri(uri)
        page.get_by_label("6-digit code shown by the app").fill(phone.now())
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("status")).to_contain_text("Authenticator added")
        expect(page.get_by_role("cell", name="In use")).to_be_visible()

        # Backup codes (the login opened the re-authentication window): shown once, after the
        # redirect that follows the form.
        page.get_by_role("link", name="Get new backup codes").click()
        page.get_by_role("button", name="Get new backup codes").click()
        codes = page.get_by_role("list", name="Backup codes").locator("code").all_inner_texts()
        assert len(codes) == 10
        page.reload()
        expect(page.get_by_role("list", name="Backup codes")).to_have_count(0)
        expect(page.get_by_text("You have 10 unused backup codes.")).to_be_visible()

        page.get_by_role("link", name="dbapi").click()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
        tab.assert_clean()

    device = SealedTOTPDevice.objects.get(user=person)
    assert device.confirmed
    assert re.fullmatch(r"otpauth://totp/dbapi(:|%3A)alice\?.*", uri)
    secret = b32encode(device.bin_key).decode()
    assert phone.secret == secret
    assert shown_secret.replace(" ", "") == secret
    assert all(backup_code_works(person, code) for code in codes)
