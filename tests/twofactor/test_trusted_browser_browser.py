"""In a real browser: tick "Trust this browser for 30 days" at the code step, log out, and the
next login needs only the password; revoke the trust on the two-factor page, and the code step is
back. Headless Debian Chromium against pytest-django's live server in this process, so
time-machine moves the server's clock (each login gets a fresh code) and nothing sleeps."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from playwright.sync_api import expect

from tests.browser import WatchedPage, chromium

from .conftest import PASSWORD, make_device, make_person, phone_for
from .logins import TRUST_COOKIE
from .test_browser import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_trusted_browser_skips_the_code_until_revoked(live_server):
    # Database work happens outside the Playwright block: its event loop would make Django
    # refuse synchronous queries in this thread (the live server has its own).
    device = make_device(make_person("alice"), name="Phone")
    phone = phone_for(device)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with time_machine.travel(start, tick=True) as clock, chromium() as browser:
        tab = WatchedPage(browser, viewport=PHONE)
        page = tab.page

        def log_in_with_password() -> None:
            page.goto(f"{live_server.url}/account/login/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

        def log_out() -> None:
            page.get_by_role("button", name="Log out").click()
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()

        # The first login: password, code, and the browser trusted.
        log_in_with_password()
        page.get_by_label("Code from your authenticator app").fill(phone.now())
        page.get_by_label("Trust this browser for 30 days").check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
        [cookie] = [c for c in page.context.cookies() if c["name"] == TRUST_COOKIE]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        assert cookie["expires"] - start.timestamp() == pytest.approx(30 * 86400, abs=120)
        log_out()

        # The next one: the password alone, verified enough for the pages.
        clock.shift(dt.timedelta(seconds=30))
        log_in_with_password()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
        expect(page.get_by_role("heading", name="Trusted browsers")).to_be_visible()
        expect(page.get_by_text("(this browser)")).to_be_visible()

        # Revoked, it asks for the code again.
        page.get_by_role("button", name="Revoke all trusted browsers").click()
        expect(page.get_by_role("status")).to_contain_text("will ask for your code again")
        expect(page.get_by_text("No browser skips the code.")).to_be_visible()
        assert [c for c in page.context.cookies() if c["name"] == TRUST_COOKIE] == []
        log_out()
        clock.shift(dt.timedelta(seconds=30))
        log_in_with_password()
        expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
        tab.assert_clean()
