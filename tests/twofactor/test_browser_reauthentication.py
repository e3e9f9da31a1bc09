"""In a real browser, an expired re-authentication window sends the person to "Confirm it's you"
and, once confirmed with the password or a code, back to the page they asked for.

Headless Debian Chromium (Playwright) against the project served in this process (pytest-django's
live server), so time-machine moves the server's clock: nothing sleeps through the window.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from playwright.sync_api import expect

from tests.browser import WatchedPage, chromium

from .conftest import PASSWORD, make_device, make_person, phone_for
from .test_browser import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WINDOW = 300
CONFIRM_HEADING = "Confirm it\u2019s you"


def test_an_expired_window_asks_to_confirm_and_returns_to_the_page(live_server, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    # Database work happens outside the Playwright block: its event loop would make Django
    # refuse synchronous queries in this thread (the live server has its own).
    device = make_device(make_person("alice"), name="Phone")
    phone = phone_for(device)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=True) as clock, chromium() as browser:
        tab = WatchedPage(browser, viewport=PHONE)
        page = tab.page
        page.goto(f"{live_server.url}/account/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_label("Code from your authenticator app").fill(phone.now())
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

        # Within the window that the login opened: straight to the page.
        page.get_by_role("link", name="Get new backup codes").click()
        expect(page.get_by_role("heading", name="Backup codes")).to_be_visible()

        # Past it: the password, then back to adding an authenticator.
        clock.shift(dt.timedelta(seconds=WINDOW + 1))
        page.goto(f"{live_server.url}/account/two-factor/")
        page.get_by_role("button", name="Add authenticator").click()
        expect(page.get_by_role("heading", name=CONFIRM_HEADING)).to_be_visible()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", name="Add an authenticator app")).to_be_visible()
        expect(page).to_have_url(f"{live_server.url}/account/two-factor/add/")
        page.get_by_role("button", name="Show the QR code").click()
        qr = page.get_by_role("img", name="QR code to scan with your authenticator app")
        expect(qr).to_be_visible()

        # Past the new one: a code, then back to removing the phone.
        clock.shift(dt.timedelta(seconds=WINDOW + 1))
        page.goto(f"{live_server.url}/account/two-factor/")
        page.get_by_role("link", name="Remove Phone").click()
        expect(page.get_by_role("heading", name=CONFIRM_HEADING)).to_be_visible()
        page.get_by_label("Or a code from your authenticator app").fill(phone.now())
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_role("heading", name="Remove “Phone”")).to_be_visible()
        expect(page).to_have_url(
            f"{live_server.url}/account/two-factor/devices/{device.pk}/remove/"
        )
        page.get_by_role("button", name="Remove").click()
        expect(page.get_by_role("status")).to_contain_text("Removed “Phone”")
        tab.assert_clean()
