"""A real browser enrols an authenticator by scanning the page's QR code, as a phone would.

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
from playwright.sync_api import expect, sync_playwright

from apps.twofactor.models import SealedTOTPDevice
from tests.servers import gunicorn, project_env

from .conftest import PASSWORD, make_person

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
    with gunicorn(env=project_env(TWO_FACTOR_REQUIRED="none")) as base_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=PHONE)
            page.goto(f"{base_url}/account/login/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

            page.get_by_role("link", name="Add authenticator").click()
            qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
            expect(qr).to_be_visible()
            box = qr.bounding_box()
            assert 200 <= box["width"] <= PHONE["width"]  # big enough to scan, fits the phone
            uri = decode_qr(qr.screenshot())
            shown_secret = page.locator("#secret").inner_text()

            phone = pyotp.parse_uri(uri)
            page.get_by_label("6-digit code shown by the app").fill(phone.now())
            page.get_by_role("button", name="Confirm").click()
            expect(page.get_by_role("status")).to_contain_text("Authenticator added")
            expect(page.get_by_role("cell", name="In use")).to_be_visible()
        finally:
            browser.close()

    device = SealedTOTPDevice.objects.get(user=person)
    assert device.confirmed
    assert re.fullmatch(r"otpauth://totp/dbapi(:|%3A)alice\?.*", uri)
    secret = b32encode(device.bin_key).decode()
    assert phone.secret == secret
    assert shown_secret.replace(" ", "") == secret
