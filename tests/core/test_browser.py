"""The admin, Swagger UI and the error pages work in Chromium under the Content-Security-Policy,
without a single violation (the account pages: tests/twofactor/test_browser.py)."""

from __future__ import annotations

import pyotp
import pytest
from playwright.sync_api import expect

from apps.actions.models import ApiClient
from tests.browser import WatchedPage, chromium
from tests.servers import gunicorn, project_env
from tests.twofactor.conftest import PASSWORD, make_device, make_person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def base_url(django_db_setup):
    """The project under gunicorn, DEBUG off as in production (DEBUG's own pages differ)."""
    with gunicorn(env=project_env(DEBUG="false")) as url:
        yield url


def test_the_admin_works_under_the_policy(base_url):
    staff = make_person("sam", is_staff=True, is_superuser=True)
    phone = pyotp.parse_uri(make_device(staff).config_url)
    desk = make_device(make_person("alice"), confirmed=False, name="Desk")
    with chromium() as browser:
        tab = WatchedPage(browser)
        page = tab.page
        page.goto(f"{base_url}/admin/")
        page.get_by_label("Username").fill("sam")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Code from your authenticator app, or a backup code").fill(phone.now())
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Site administration")).to_be_visible()

        # A change list with its actions (admin scripts), a change form, the desk QR code page.
        page.get_by_role("link", name="Users").first.click()
        page.get_by_role("checkbox", name="Select all").check()  # actions.js
        expect(page.get_by_text("2 of 2 selected")).to_be_visible()
        page.get_by_role("link", name="alice").click()
        expect(page.get_by_role("heading", name="Change user")).to_be_visible()
        page.goto(f"{base_url}/admin/twofactor/sealedtotpdevice/{desk.pk}/config/")
        expect(page.get_by_role("img", name="QR code to add alice")).to_be_visible()

        # A new API client: its key is shown once, on the project's own page.
        page.goto(f"{base_url}/admin/actions/apiclient/add/")
        page.get_by_label("Name").fill("billing")
        page.get_by_role("button", name="Save", exact=True).click()
        key = page.get_by_label("API key")
        expect(key).to_be_visible()
        assert key.input_value().count(".") == 1
        tab.assert_clean()
    assert ApiClient.objects.filter(name="billing").exists()


def test_swagger_ui_works_under_the_policy(base_url):
    with chromium() as browser:
        tab = WatchedPage(browser)
        page = tab.page
        page.goto(f"{base_url}/api/docs/")
        operation = page.locator(".opblock-summary-path", has_text="/api/v1/auth/token").first
        expect(operation).to_be_visible()
        operation.click()
        expect(page.get_by_role("button", name="Try it out").first).to_be_visible()
        tab.assert_clean()


def test_the_error_pages_work_under_the_policy(base_url):
    with chromium() as browser:
        tab = WatchedPage(browser)
        page = tab.page
        answer = page.goto(f"{base_url}/account/no/such/page/")
        assert answer.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_text("Request id:")).to_be_visible()
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px"  # site.css applied
        answer = page.goto(f"{base_url}/api/v1/no/such/thing")
        assert answer.status == 404
        assert answer.headers["content-type"] == "application/problem+json"
        tab.assert_clean()
