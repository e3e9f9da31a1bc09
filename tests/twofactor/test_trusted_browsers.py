""" "Trust this browser for 30 days" at the code step of a login: the cookie it sets, the next
login from that browser skipping the code, and every way the trust ends (revoked one by one or
all at once, expired, a password change, a locked or removed second factor, a staff reset), and
cookies that must never skip it (altered, someone else's)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
import time_machine
from django.test import Client

from apps.twofactor import services
from apps.twofactor.models import Passkey, SecondFactorLock, TrustedBrowser

from .authenticator import SoftAuthenticator
from .conftest import code_for, make_backup_codes, make_device, make_person
from .logins import (
    TRUST_COOKIE,
    log_in,
    session_user_id,
    submit_code,
    submit_password,
    verified_by,
)
from .test_passkey_pages import add_passkey, options
from .test_passkey_pages import log_in as log_in_reauthenticated

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def clock():
    """The server's clock (and the phone's), moved by the tests: each login a step later, so
    every code is a fresh one."""
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


def later(clock, **delta) -> None:
    clock.shift(dt.timedelta(**delta))


@pytest.fixture
def browser(db) -> Client:
    return Client(HTTP_USER_AGENT=FIREFOX)


def trust(browser: Client, device) -> None:
    """Log in with a code, ticking the box, then log out: the browser keeps only its cookie."""
    log_in(browser, device, trust=True)
    assert browser.post("/account/logout/").status_code == 302
    assert TRUST_COOKIE in browser.cookies


def skips_the_code(browser: Client, device, clock) -> bool:
    """Whether the password alone logs this browser in, verified by `device`; logged out again."""
    later(clock, seconds=30)
    response = submit_password(browser, device.user.get_username(), next_url="/account/")
    if response["Location"].startswith("/account/login/code/"):
        assert session_user_id(browser) is None
        return False
    assert response["Location"] == "/account/"
    assert session_user_id(browser) == device.user.pk
    assert verified_by(browser) == device.persistent_id
    browser.post("/account/logout/")
    return True


# --- The choice and its cookie --------------------------------------------------------------------


def test_the_code_step_offers_to_trust_the_browser_for_30_days(browser, device):
    submit_password(browser)
    html = browser.get("/account/login/code/").content.decode()
    assert '<input type="checkbox" name="trust_browser" id="id_trust_browser">' in html
    assert '<label for="id_trust_browser">Trust this browser for 30 days</label>' in html


def test_the_days_come_from_the_setting(browser, device, settings):
    settings.TWO_FACTOR_TRUST_DAYS = 7
    submit_password(browser)
    assert b"Trust this browser for 7 days" in browser.get("/account/login/code/").content


def test_with_no_days_no_trust_is_offered_or_given(browser, device, settings, clock):
    settings.TWO_FACTOR_TRUST_DAYS = 0
    submit_password(browser)
    assert b"Trust this browser" not in browser.get("/account/login/code/").content
    assert submit_code(browser, device, trust=True).status_code == 302
    assert TRUST_COOKIE not in browser.cookies
    assert not TrustedBrowser.objects.exists()


@pytest.mark.parametrize("secure", [True, False])
def test_the_cookie_is_signed_httponly_and_secure_where_the_session_cookie_is(
    browser, device, settings, clock, secure
):
    settings.SESSION_COOKIE_SECURE = secure
    submit_password(browser)
    response = submit_code(browser, device, trust=True)
    cookie = response.cookies[TRUST_COOKIE]
    assert cookie["httponly"] is True
    assert bool(cookie["secure"]) is secure
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 30 * 86400
    user_id, secret, signature = cookie.value.split(":", 2)
    assert user_id == str(device.user.pk)
    assert signature  # Django's signing: value, timestamp and signature
    # The database holds the digest of the browser's secret, never the secret.
    trusted = TrustedBrowser.objects.get()
    assert trusted.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(list(TrustedBrowser.objects.values_list()))
    assert trusted.user == device.user
    assert trusted.device == device.persistent_id
    assert trusted.user_agent == FIREFOX
    assert trusted.expires_at == START + dt.timedelta(days=30)


def test_without_the_box_ticked_nothing_is_trusted(browser, device, clock):
    log_in(browser, device)
    assert TRUST_COOKIE not in browser.cookies
    assert not TrustedBrowser.objects.exists()
    browser.post("/account/logout/")
    assert not skips_the_code(browser, device, clock)


def test_trusting_a_browser_again_replaces_its_trust(browser, device, clock):
    trust(browser, device)
    first = TrustedBrowser.objects.get()
    SecondFactorLock.objects.create(user=device.user, locked_at=START)  # the code step again
    assert not skips_the_code(browser, device, clock)
    services.unlock_second_factor(user=device.user)
    later(clock, seconds=30)
    assert submit_code(browser, device, trust=True).status_code == 302
    assert list(TrustedBrowser.objects.values_list("pk", flat=True)) != [first.pk]
    assert TrustedBrowser.objects.count() == 1


def test_a_wrong_code_trusts_nothing(browser, device, clock):
    submit_password(browser)
    response = browser.post("/account/login/code/", {"code": "000000", "trust_browser": "on"})
    assert response.status_code == 200
    assert TRUST_COOKIE not in response.cookies
    assert not TrustedBrowser.objects.exists()


# --- Skipping the code ----------------------------------------------------------------------------


def test_a_trusted_browser_skips_the_code_after_the_right_password(browser, device, clock):
    trust(browser, device)
    assert skips_the_code(browser, device, clock)
    assert TrustedBrowser.objects.get().last_used_at == START + dt.timedelta(seconds=30)


def test_a_trusted_browser_still_needs_the_right_password(browser, device, clock):
    trust(browser, device)
    response = submit_password(browser, password="wrong")
    assert response.status_code == 200
    assert session_user_id(browser) is None


def test_a_backup_code_can_vouch_for_a_browser(browser, person, clock):
    backup = make_backup_codes(person, ["abcd2345"])
    submit_password(browser)
    response = browser.post("/account/login/code/", {"code": "abcd2345", "trust_browser": "on"})
    assert response.status_code == 302
    browser.post("/account/logout/")
    later(clock, seconds=30)
    assert submit_password(browser)["Location"] == "/account/two-factor/"
    assert verified_by(browser) == backup.persistent_id


def test_a_passkey_at_the_code_step_can_vouch_for_a_browser(browser, person, clock):
    authenticator = SoftAuthenticator()
    log_in_reauthenticated(browser, person)
    assert add_passkey(browser, authenticator).status_code == 302
    browser.logout()
    passkey = Passkey.objects.get(user=person)
    submit_password(browser)
    html = browser.get("/account/login/code/").content.decode()
    assert '<label for="id_passkey_trust_browser">Trust this browser for 30 days</label>' in html
    request = options(browser, "/account/login/passkey/second-factor/options/")
    answer = {"passkey": json.dumps(authenticator.get(request)), "trust_browser": "on"}
    assert browser.post("/account/login/code/", answer).status_code == 302
    browser.post("/account/logout/")
    assert skips_the_code(browser, passkey, clock)


def test_a_trusted_login_opens_the_admin_for_staff(browser, clock):
    staff = make_person("staffer", is_staff=True, is_superuser=True)
    device = make_device(staff)
    trust(browser, device)
    later(clock, seconds=30)
    submit_password(browser, "staffer")
    assert browser.get("/admin/").status_code == 200


def test_a_trusted_login_counts_as_a_recent_reauthentication(browser, device, clock):
    trust(browser, device)
    later(clock, minutes=10)
    submit_password(browser)
    assert browser.get("/account/password/").status_code == 200


# --- Cookies that must not skip it ----------------------------------------------------------------


def test_an_altered_cookie_skips_nothing(browser, device, clock):
    trust(browser, device)
    user_id, secret, signature = browser.cookies[TRUST_COOKIE].value.split(":", 2)
    altered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    browser.cookies[TRUST_COOKIE] = f"{user_id}:{altered}:{signature}"
    assert not skips_the_code(browser, device, clock)


def test_a_cookie_naming_someone_else_skips_nothing(browser, device, clock):
    """Alice's cookie, re-signed for Bob's id (as only the server could), is not a trust of Bob's:
    the trust's row is Alice's."""
    from django.core import signing

    from apps.twofactor.trusted_browsers.cookies import SALT

    bob_device = make_device(make_person("bob"))
    trust(browser, device)
    _, secret, _ = browser.cookies[TRUST_COOKIE].value.split(":", 2)
    signer = signing.get_cookie_signer(salt=TRUST_COOKIE + SALT)
    browser.cookies[TRUST_COOKIE] = signer.sign(f"{bob_device.user.pk}:{secret}")
    assert not skips_the_code(browser, bob_device, clock)


def test_one_persons_trusted_browser_asks_someone_else_for_their_code(browser, device, clock):
    bob_device = make_device(make_person("bob"))
    trust(browser, device)
    assert not skips_the_code(browser, bob_device, clock)
    assert skips_the_code(browser, device, clock)  # still Alice's


def test_a_cookie_copied_from_another_browser_without_its_row_skips_nothing(browser, device, clock):
    trust(browser, device)
    TrustedBrowser.objects.all().delete()
    assert not skips_the_code(browser, device, clock)


# --- How trust ends -------------------------------------------------------------------------------


def test_a_trust_expires_after_its_days(browser, device, clock):
    trust(browser, device)
    later(clock, days=29, hours=23)
    assert skips_the_code(browser, device, clock)
    later(clock, hours=1)
    assert not skips_the_code(browser, device, clock)


def test_a_trust_expires_with_its_row_even_with_a_younger_cookie(browser, device, clock):
    trust(browser, device)
    TrustedBrowser.objects.update(expires_at=START + dt.timedelta(minutes=1))
    later(clock, minutes=2)
    assert not skips_the_code(browser, device, clock)


def test_revoking_one_browser_asks_it_for_the_code_again(browser, device, clock):
    other = Client(HTTP_USER_AGENT="Other browser")
    trust(browser, device)
    later(clock, seconds=30)
    trust(other, device)
    revoked = TrustedBrowser.objects.get(user_agent=FIREFOX)
    later(clock, seconds=30)
    submit_password(other)  # trusted: logged in without the code
    response = other.post(f"/account/two-factor/trusted-browsers/{revoked.pk}/revoke/")
    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    other.post("/account/logout/")
    assert not skips_the_code(browser, device, clock)
    assert skips_the_code(other, device, clock)


def test_revoking_this_browser_forgets_its_cookie(browser, device, clock):
    trust(browser, device)
    later(clock, seconds=30)
    submit_password(browser)
    trusted = TrustedBrowser.objects.get()
    response = browser.post(f"/account/two-factor/trusted-browsers/{trusted.pk}/revoke/")
    assert response.cookies[TRUST_COOKIE].value == ""
    assert not TrustedBrowser.objects.exists()


def test_revoking_all_asks_every_browser_for_the_code_again(browser, device, clock):
    other = Client()
    trust(browser, device)
    later(clock, seconds=30)
    trust(other, device)
    later(clock, seconds=30)
    submit_password(browser)
    response = browser.post("/account/two-factor/trusted-browsers/revoke/")
    assert response.status_code == 302
    assert response.cookies[TRUST_COOKIE].value == ""
    assert not TrustedBrowser.objects.exists()
    browser.post("/account/logout/")
    assert not skips_the_code(other, device, clock)


def test_no_one_revokes_another_persons_trusted_browser(browser, device, clock):
    trust(browser, device)
    bob = Client()
    log_in(bob, make_device(make_person("bob")), steps=1)
    trusted = TrustedBrowser.objects.get()
    response = bob.post(f"/account/two-factor/trusted-browsers/{trusted.pk}/revoke/")
    assert response.status_code == 404
    bob.post("/account/two-factor/trusted-browsers/revoke/")
    assert TrustedBrowser.objects.filter(pk=trusted.pk).exists()
    assert skips_the_code(browser, device, clock)


@pytest.mark.parametrize("path", ["1/revoke/", "revoke/"])
def test_revoking_takes_a_post(browser, device, clock, path):
    trust(browser, device)
    later(clock, seconds=30)
    submit_password(browser)
    trusted = TrustedBrowser.objects.get()
    url = f"/account/two-factor/trusted-browsers/{path.replace('1', str(trusted.pk))}"
    assert browser.get(url).status_code == 405
    assert TrustedBrowser.objects.filter(pk=trusted.pk).exists()


@pytest.mark.parametrize("path", ["{pk}/revoke/", "revoke/"])
def test_revoking_needs_the_csrf_token(device, clock, path):
    browser = Client(enforce_csrf_checks=True)
    trusting = Client()
    trust(trusting, device)
    browser.force_login(device.user)
    session = browser.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    trusted = TrustedBrowser.objects.get()
    url = "/account/two-factor/trusted-browsers/" + path.format(pk=trusted.pk)
    assert browser.post(url).status_code == 403
    assert TrustedBrowser.objects.filter(pk=trusted.pk).exists()


def test_revoking_needs_a_verified_login(browser, device, clock):
    trust(browser, device)
    trusted = TrustedBrowser.objects.get()
    stranger = Client()
    response = stranger.post(f"/account/two-factor/trusted-browsers/{trusted.pk}/revoke/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")
    assert TrustedBrowser.objects.filter(pk=trusted.pk).exists()


def test_a_locked_second_factor_is_not_skipped(browser, device, clock):
    trust(browser, device)
    SecondFactorLock.objects.create(user=device.user, consecutive_failures=100, locked_at=START)
    assert not skips_the_code(browser, device, clock)
    response = browser.post("/account/login/code/", {"code": code_for(device)})
    assert response.status_code == 403
    assert TrustedBrowser.objects.exists()  # not revoked: honoured again once unlocked
    services.unlock_second_factor(user=device.user)
    assert skips_the_code(browser, device, clock)


def test_removing_the_vouching_device_ends_the_trust(browser, person, clock):
    first, second = make_device(person, name="Old phone"), make_device(person, name="New phone")
    trust(browser, first)
    first.delete()
    assert not skips_the_code(browser, second, clock)
    assert not TrustedBrowser.objects.exists()


def test_removing_the_last_device_is_not_bypassed(browser, device, clock, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    trust(browser, device)
    device.delete()
    later(clock, seconds=30)
    response = submit_password(browser)
    assert response["Location"].startswith("/account/two-factor/add/")  # enrol, not verified
    assert verified_by(browser) is None
    # A new authenticator is not vouched for by the trust the removed one gave.
    browser.post("/account/logout/")
    new_device = make_device(device.user, name="New phone")
    assert not skips_the_code(browser, new_device, clock)
    assert not TrustedBrowser.objects.exists()


# --- The two-factor page --------------------------------------------------------------------------


def test_the_two_factor_page_lists_trusted_browsers(browser, device, clock):
    other = Client(HTTP_USER_AGENT="Other browser")
    trust(other, device)
    later(clock, seconds=30)
    trust(browser, device)
    later(clock, seconds=30)
    submit_password(browser)  # skips the code
    html = browser.get("/account/two-factor/").content.decode()
    assert "Trusted browsers" in html
    assert f"{FIREFOX} <strong>(this browser)</strong>" in html
    assert "Other browser</td>" in html
    assert "30 Nov 2026, 09:01" in html  # this one's last use
    assert html.count("/revoke/") == 3  # each, and all


def test_the_two_factor_page_without_trusted_browsers(browser, device, clock):
    log_in(browser, device)
    html = browser.get("/account/two-factor/").content.decode()
    assert "No browser skips the code." in html


# --- The admin ------------------------------------------------------------------------------------


def test_staff_see_trusted_browsers_but_never_their_digest(staff_client, device, clock):
    trust(Client(HTTP_USER_AGENT=FIREFOX), device)
    trusted = TrustedBrowser.objects.get()
    listing = staff_client.get("/admin/twofactor/trustedbrowser/")
    assert listing.status_code == 200
    assert FIREFOX in listing.content.decode()
    page = staff_client.get(f"/admin/twofactor/trustedbrowser/{trusted.pk}/change/")
    assert page.status_code == 200
    assert trusted.digest not in page.content.decode()
    assert staff_client.get("/admin/twofactor/trustedbrowser/add/").status_code == 403


def test_staff_revoke_a_trusted_browser(staff_client, browser, device, clock):
    trust(browser, device)
    trusted = TrustedBrowser.objects.get()
    response = staff_client.post(
        f"/admin/twofactor/trustedbrowser/{trusted.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not skips_the_code(browser, device, clock)


def test_staffs_reset_of_the_second_factor_revokes_trusted_browsers(staff_client, browser, device):
    trust(browser, device)
    staff_client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [device.user.pk]},
    )
    assert not TrustedBrowser.objects.filter(user=device.user).exists()
