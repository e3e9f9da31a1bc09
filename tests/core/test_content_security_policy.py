"""Every HTML page carries a Content-Security-Policy that allows no inline script and no third-party
origin, and has nothing inline the policy would refuse (tests/twofactor/test_browser.py shows
each page working in Chromium under it)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.twofactor.conftest import (
    make_backup_codes,
    make_device,
    make_person,
    mark_reauthenticated,
)

pytestmark = pytest.mark.django_db


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: sources for name, *sources in directives}


def inline_code(html: str) -> list[str]:
    """What a policy without 'unsafe-inline' refuses: scripts and styles in the page itself."""
    found = re.findall(r"<script\b(?![^>]*\bsrc=)[^>]*>", html)
    found += re.findall(r"<style\b[^>]*>", html)
    found += re.findall(r"<[^>]+\sstyle=\"[^>]*>", html)
    found += re.findall(r"<[^>]+\son[a-z]+=[^>]*>", html)
    found += re.findall(r"href=\"javascript:", html)
    return found


@pytest.fixture
def staff(client) -> Client:
    """A superuser verified by a code, as after the admin's login."""
    from django_otp import DEVICE_ID_SESSION_KEY

    person = make_person("sam", is_staff=True, is_superuser=True)
    device = make_device(person)
    make_backup_codes(person, ["abcd2345"])
    client.force_login(person)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    mark_reauthenticated(session)  # as the login's code did: the factor pages open
    session.save()
    return client


def pages(staff_member_device_pk: int, other_device_pk: int) -> list[tuple[str, int]]:
    return [
        ("/account/two-factor/", 200),
        ("/account/two-factor/add/", 200),
        ("/account/two-factor/backup-codes/", 200),
        (f"/account/two-factor/devices/{staff_member_device_pk}/remove/", 200),
        (f"/account/two-factor/devices/{other_device_pk}/confirm/", 200),
        ("/admin/", 200),
        ("/admin/accounts/user/", 200),
        ("/admin/accounts/user/add/", 200),
        ("/admin/twofactor/sealedtotpdevice/", 200),
        (f"/admin/twofactor/sealedtotpdevice/{other_device_pk}/config/", 200),
        ("/admin/actions/apiclient/add/", 200),
        ("/api/docs/", 200),
        ("/account/no/such/page/", 404),
    ]


def test_every_page_carries_a_strict_policy_and_nothing_inline(staff):
    from apps.twofactor.models import SealedTOTPDevice

    own = SealedTOTPDevice.objects.get()
    other = make_device(own.user, confirmed=False, name="From the app")
    for path, status in pages(own.pk, other.pk):
        response = staff.get(path, headers={"Accept": "text/html"})
        assert response.status_code == status, path
        assert response["Content-Type"].startswith("text/html"), path
        directives = policy(response)
        assert directives["script-src"] == ["'self'"], path
        assert directives["style-src"] == ["'self'"], path
        assert directives["object-src"] == ["'none'"], path
        assert directives["frame-ancestors"] == ["'none'"], path
        sources = [source for values in directives.values() for source in values]
        assert not [s for s in sources if "unsafe" in s or "://" in s or s in ("*", "https:")]
        assert inline_code(response.content.decode()) == [], path


def assert_strict(response) -> None:
    directives = policy(response)
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert inline_code(response.content.decode()) == []


def test_the_login_pages_and_error_pages_carry_the_policy(client):
    for path in ("/account/login/", "/admin/login/"):
        assert_strict(client.get(path))
    csrf_client = Client(enforce_csrf_checks=True)
    refused = csrf_client.post(
        "/account/login/", {"username": "a"}, headers={"Accept": "text/html"}
    )
    assert refused.status_code == 403
    assert_strict(refused)
    assert b"reload the page" in refused.content


def test_swagger_uis_script_comes_from_this_site(client):
    page = client.get("/api/docs/").content.decode()
    scripts = re.findall(r"<script src=\"([^\"]+)\"", page)
    assert len(scripts) == 3
    assert all(src.startswith("/") and not src.startswith("//") for src in scripts)
    init = next(src for src in scripts if "script" in src.partition("?")[2])
    response = client.get(init.replace("&amp;", "&"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    assert b"SwaggerUIBundle(" in response.content


def test_the_hit_counter_answers_with_the_policy_too(client):
    response = client.get("/")
    assert policy(response)["script-src"] == ["'self'"]


@pytest.mark.urls("tests.core.urls")
def test_the_server_error_page_carries_the_policy(client):
    client.raise_request_exception = False
    response = client.get("/t/plain-broken", headers={"Accept": "text/html"})
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert_strict(response)
