"""A real browser uses passkeys: headless Debian Chromium (Playwright) with the DevTools protocol's
virtual authenticator (`WebAuthn.addVirtualAuthenticator`, ctap2, internal, resident keys, user
verification), against the project under gunicorn, every page served with a
Content-Security-Policy that allows only the site's own scripts.

WebAuthn needs a secure context and a domain for an RP ID: the pages are opened on
`http://localhost:PORT`, which the server is told is its origin.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from apps.twofactor.models import Passkey, SealedTOTPDevice
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.servers import free_port, gunicorn, project_env

from .conftest import PASSWORD, make_person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIRTUAL_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}


class Browser:
    """A Chromium page with a virtual authenticator, under the pages' own Content-Security-Policy,
    every script error and CSP violation collected."""

    def __init__(self, playwright, base_url: str):
        self.base_url = base_url
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = self.browser.new_context()
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console)
        cdp = context.new_cdp_session(self.page)
        cdp.send("WebAuthn.enable", {"enableUI": False})
        cdp.send("WebAuthn.addVirtualAuthenticator", {"options": VIRTUAL_AUTHENTICATOR})

    def _console(self, message) -> None:
        # A refused passkey is answered 400 on purpose; Chromium reports any 4xx page load.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def log_in_with_password(self, username: str) -> None:
        self.goto("/account/login/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Log in").click()

    def add_passkey(self, name: str) -> None:
        expect(self.page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()
        self.page.get_by_label("Name of the new passkey").fill(name)
        self.page.get_by_role("button", name="Add a passkey", exact=True).click()
        expect(self.page.get_by_text(f"Passkey “{name}” added.")).to_be_visible()
        expect(self.page.get_by_role("cell", name=name, exact=True)).to_be_visible()

    def log_out(self) -> None:
        self.page.get_by_role("button", name="Log out").click()
        expect(self.page.get_by_role("heading", name="Log in")).to_be_visible()

    def close(self) -> None:
        self.browser.close()


def serve(*, policy: str):
    """The project under gunicorn on localhost, its WebAuthn origin set to match, with this
    TWO_FACTOR_REQUIRED."""
    port = free_port()
    env = project_env(
        TWO_FACTOR_REQUIRED=policy,
        WEBAUTHN_RP_ID="localhost",
        WEBAUTHN_ORIGINS=f"http://localhost:{port}",
    )
    # Threads: Chromium may hold an idle connection open, which would stall a lone sync worker.
    with gunicorn(env=env, port=port, args=("--threads", "4")) as base_url:
        yield base_url.replace("127.0.0.1", "localhost")


@pytest.fixture
def site():
    yield from serve(policy="none")


@pytest.fixture
def site_requiring_a_factor():
    yield from serve(policy="all")


def test_a_passkey_added_on_the_page_signs_in_without_a_password_and_opens_the_admin(site):
    make_person("alice", is_staff=True, is_superuser=True)
    with sync_playwright() as playwright:
        browser = Browser(playwright, site)
        try:
            browser.log_in_with_password("alice")
            browser.add_passkey("Laptop")
            browser.log_out()

            browser.goto("/account/login/?next=/admin/")
            browser.page.get_by_role("button", name="Sign in with a passkey").click()
            expect(browser.page.get_by_text("Site administration")).to_be_visible()
            assert browser.page.url == f"{site}/admin/"
            assert browser.errors == []
        finally:
            browser.close()

    passkey = Passkey.objects.get(user__username="alice")
    assert passkey.passwordless
    assert passkey.last_used_at is not None


def test_password_then_passkey_and_a_removed_passkey_no_longer_works(site):
    make_person("bob")
    with sync_playwright() as playwright:
        browser = Browser(playwright, site)
        page = browser.page
        try:
            browser.log_in_with_password("bob")
            browser.add_passkey("Phone")
            browser.log_out()

            # After the password, the passkey is the second step, offered first.
            browser.log_in_with_password("bob")
            page.get_by_role("button", name="Use your passkey").click()
            expect(page.get_by_role("heading", name="Two-factor authentication")).to_be_visible()

            page.get_by_role("link", name="Remove Phone").click()
            page.get_by_role("button", name="Confirm with a passkey").click()
            expect(page.get_by_text("Removed “Phone”.")).to_be_visible()
            expect(page.get_by_text("You have no passkey yet.")).to_be_visible()
            browser.log_out()

            # The authenticator still holds the passkey; the site no longer accepts it.
            page.get_by_role("button", name="Sign in with a passkey").click()
            expect(page.get_by_role("alert")).to_contain_text(
                "That passkey is not registered here."
            )
            expect(page.get_by_role("heading", name="Log in")).to_be_visible()
            assert browser.errors == []
        finally:
            browser.close()

    assert not Passkey.objects.exists()


def test_someone_the_policy_covers_can_enrol_with_a_passkey(site_requiring_a_factor):
    site = site_requiring_a_factor
    make_person("carol", is_staff=True, is_superuser=True)
    with sync_playwright() as playwright:
        browser = Browser(playwright, site)
        page = browser.page
        try:
            browser.log_in_with_password("carol")
            # Sent to enrolment: an authenticator app's QR code, or a passkey.
            expect(page.get_by_role("heading", name="Add an authenticator app")).to_be_visible()
            expect(page.get_by_text("add an authenticator app or a passkey")).to_be_visible()
            page.get_by_label("Name of the new passkey").fill("Laptop")
            page.get_by_role("button", name="Add a passkey", exact=True).click()
            expect(page.get_by_text("Passkey “Laptop” added.")).to_be_visible()
            expect(page.get_by_role("cell", name="Laptop", exact=True)).to_be_visible()

            browser.goto("/admin/")  # the admin takes the session the passkey verified
            expect(page.get_by_text("Site administration")).to_be_visible()
            assert browser.errors == []
        finally:
            browser.close()

    passkey = Passkey.objects.get(user__username="carol")
    assert not SealedTOTPDevice.objects.exists()
    assert passkey.confirmed
