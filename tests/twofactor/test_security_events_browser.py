"""In a real browser, a person logs in, follows "Security events" from the two-factor page and
reads their account's events, newest first and a page at a time, under the pages'
Content-Security-Policy.

Headless Debian Chromium (Playwright) against the project served in this process (pytest-django's
live server).
"""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from apps.twofactor.models import SecurityEvent
from tests.browser import WatchedPage, chromium

from .conftest import PASSWORD, make_person
from .test_browser import PHONE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_security_page_shows_the_persons_events(live_server, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    settings.SECURITY_EVENTS_PAGE_SIZE = 3
    # Database work happens outside the Playwright block: its event loop would make Django
    # refuse synchronous queries in this thread (the live server has its own).
    person = make_person("alice")
    earlier = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)
    for minute, kind in enumerate(["device_added", "backup_codes_generated", "otp_failed"]):
        SecurityEvent.objects.create(
            user=person,
            kind=kind,
            at=earlier + dt.timedelta(minutes=minute),
            ip="203.0.113.9",
            user_agent="Phone/2.0",
            details={"via": "api", "device_kind": "totp"} if kind == "device_added" else {},
        )
    SecurityEvent.objects.create(user=make_person("bob"), kind="login_failed", ip="192.0.2.1")

    with chromium() as browser:
        tab = WatchedPage(browser, viewport=PHONE)
        page = tab.page
        page.goto(f"{live_server.url}/account/login/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

        page.get_by_role("link", name="Security events").click()

        expect(page.get_by_role("heading", name="Security events")).to_be_visible()
        rows = page.locator("table.security-events tbody tr")
        # This login, just now, comes first; then the older events, newest first.
        expect(rows).to_have_count(3)
        expect(rows.nth(0)).to_contain_text("Logged in")
        expect(rows.nth(0)).to_contain_text("127.0.0.1")
        expect(rows.nth(0)).to_contain_text("on the website")
        expect(rows.nth(1)).to_contain_text("Wrong second-factor code")
        expect(rows.nth(2)).to_contain_text("New backup codes")
        expect(page.get_by_text("192.0.2.1")).to_have_count(0)  # not someone else's
        expect(page.get_by_text("Page 1 of 2")).to_be_visible()

        page.get_by_role("link", name="Older").click()

        expect(rows).to_have_count(1)
        expect(rows.nth(0)).to_contain_text("Second factor added")
        expect(rows.nth(0)).to_contain_text("203.0.113.9")
        expect(rows.nth(0)).to_contain_text("in the app, authenticator app")
        expect(page.get_by_role("link", name="Newer")).to_be_visible()
        tab.assert_clean()
