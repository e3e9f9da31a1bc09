"""Passkeys on the pages, through the HTTP client with a software authenticator answering what
the browser would: add, list, rename, remove; sign in without a password; a passkey as the
second step after a password; the admin."""

from __future__ import annotations

import json

import pytest
from django_otp import DEVICE_ID_SESSION_KEY

from apps.twofactor.models import Passkey

from .authenticator import SoftAuthenticator
from .conftest import (
    PASSWORD,
    make_backup_codes,
    make_device,
    make_person,
    mark_reauthenticated,
)

pytestmark = pytest.mark.django_db


def options(client, url: str) -> dict:
    response = client.post(url)
    assert response.status_code == 200, response.content
    return response.json()


def add_passkey(client, authenticator, *, name="Laptop", **extra):
    answer = authenticator.create(options(client, "/account/two-factor/passkeys/options/"))
    return client.post(
        "/account/two-factor/passkeys/", {"name": name, "passkey": json.dumps(answer)}, **extra
    )


def sign_in(client, authenticator, **answer):
    request = options(client, "/account/login/passkey/options/")
    body = {"passkey": json.dumps(authenticator.get(request, **answer)), "next": "/admin/"}
    return client.post("/account/login/passkey/", body)


def verified_login(client, passkey, authenticator):
    assert sign_in(client, authenticator).status_code == 302


def log_in(client, person) -> None:
    """Logged in with the password just now: the re-authentication window that adding a passkey
    needs is open."""
    client.force_login(person)
    session = client.session
    mark_reauthenticated(session)
    session.save()


def verified_device(client):
    return client.session.get(DEVICE_ID_SESSION_KEY)


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def passkey(client, person, authenticator) -> Passkey:
    """The person's passkey, added on the two-factor page; the client is then logged out."""
    log_in(client, person)
    assert add_passkey(client, authenticator).status_code == 302
    client.logout()
    return Passkey.objects.get(user=person)


# --- The two-factor page ----------------------------------------------------------------------


def test_the_two_factor_page_offers_add_a_passkey_with_no_inline_script(client, person):
    log_in(client, person)
    html = client.get("/account/two-factor/").content.decode()
    assert ">Add a passkey</button>" in html
    assert 'data-options-url="/account/two-factor/passkeys/options/"' in html
    assert '<script src="/static/js/passkeys.js" defer></script>' in html
    assert "<script>" not in html
    assert "You have no passkey yet." in html


def test_adding_a_passkey_lists_it_and_verifies_the_session(client, person, authenticator):
    log_in(client, person)
    response = add_passkey(client, authenticator, name="Work laptop")

    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    passkey = Passkey.objects.get(user=person)
    assert passkey.name == "Work laptop"
    assert verified_device(client) == passkey.persistent_id
    page = client.get("/account/two-factor/").content.decode()
    assert "Passkey “Work laptop” added." in page
    assert "<td>Work laptop</td>" in page
    assert authenticator.id not in page


def test_a_refused_passkey_is_a_400_page_and_nothing_is_added(client, person, authenticator):
    log_in(client, person)
    request = options(client, "/account/two-factor/passkeys/options/")
    answer = json.dumps(authenticator.create(request, origin="https://evil.example"))
    response = client.post("/account/two-factor/passkeys/", {"name": "X", "passkey": answer})
    assert response.status_code == 400
    assert "That passkey answer was made for another site." in response.content.decode()
    assert not Passkey.objects.exists()


def test_a_challenge_belongs_to_the_session_that_asked(client, person, authenticator):
    from django.test import Client

    log_in(client, person)
    request = options(client, "/account/two-factor/passkeys/options/")
    other = Client()
    log_in(other, person)
    answer = json.dumps(authenticator.create(request))
    response = other.post("/account/two-factor/passkeys/", {"passkey": answer})
    assert response.status_code == 400
    assert not Passkey.objects.exists()


def test_an_empty_answer_is_refused(client, person):
    log_in(client, person)
    for body in ({}, {"passkey": "not json"}, {"passkey": "[]"}):
        assert client.post("/account/two-factor/passkeys/", body).status_code == 400
    assert not Passkey.objects.exists()


def test_outside_the_reauthentication_window_adding_a_passkey_asks_to_confirm(client, person):
    client.force_login(person)  # no password or code entered in this session
    html = client.get("/account/two-factor/").content.decode()
    assert ">Add a passkey</button>" not in html
    assert "Confirm it\u2019s you to add a passkey" in html
    assert 'href="/account/reauthenticate/?next=' in html
    refused = client.post("/account/two-factor/passkeys/options/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Confirm it is you first."}
    response = client.post("/account/two-factor/passkeys/", {"passkey": "{}"})
    assert response["Location"].startswith("/account/reauthenticate/")
    assert not Passkey.objects.exists()


def test_adding_a_passkey_needs_the_second_factor_of_a_person_who_has_one(client, device):
    client.force_login(device.user)  # password only: not verified by the device
    response = client.post("/account/two-factor/passkeys/options/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/code/")
    assert not Passkey.objects.exists()


def test_rename_a_passkey(client, passkey, authenticator):
    verified_login(client, passkey, authenticator)
    url = f"/account/two-factor/passkeys/{passkey.pk}/rename/"
    assert client.post(url, {"name": ""}).status_code == 400
    response = client.post(url, {"name": "Phone"})
    assert response.status_code == 302
    passkey.refresh_from_db()
    assert passkey.name == "Phone"


def test_someone_elses_passkey_is_404(client, passkey):
    bob = make_person("bob")
    client.force_login(bob)
    for action in ("rename", "remove"):
        url = f"/account/two-factor/passkeys/{passkey.pk}/{action}/"
        assert client.post(url, {"name": "mine"}).status_code == 404
    passkey.refresh_from_db()
    assert passkey.name == "Laptop"


# --- Removing ---------------------------------------------------------------------------------


def test_removing_a_passkey_asks_for_a_passkey_and_then_it_no_longer_works(
    client, passkey, authenticator
):
    verified_login(client, passkey, authenticator)
    url = f"/account/two-factor/passkeys/{passkey.pk}/remove/"
    page = client.get(url).content.decode()
    assert ">Confirm with a passkey</button>" in page
    assert "id_code" not in page  # no authenticator app, no backup codes: no code form

    confirm = options(client, "/account/login/passkey/second-factor/options/")
    response = client.post(url, {"passkey": json.dumps(authenticator.get(confirm))})

    assert response.status_code == 302
    assert not Passkey.objects.exists()
    client.logout()
    refused = sign_in(client, authenticator)
    assert refused.status_code == 400
    assert "That passkey is not registered here." in refused.content.decode()


def test_removing_without_a_second_factor_changes_nothing(client, passkey, authenticator):
    verified_login(client, passkey, authenticator)
    url = f"/account/two-factor/passkeys/{passkey.pk}/remove/"
    assert client.post(url, {"passkey": ""}).status_code == 400
    stale = options(client, "/account/login/passkey/options/")  # a sign-in challenge
    response = client.post(url, {"passkey": json.dumps(authenticator.get(stale))})
    assert response.status_code == 400
    assert Passkey.objects.filter(pk=passkey.pk).exists()


def test_a_passkey_can_be_removed_with_a_code(client, passkey, person, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    make_backup_codes(person, ["abcd2345"])
    log_in(client, person)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = passkey.persistent_id
    session.save()
    url = f"/account/two-factor/passkeys/{passkey.pk}/remove/"
    assert client.post(url, {"code": "wrongcode"}).status_code == 200
    assert Passkey.objects.exists()
    response = client.post(url, {"code": "abcd2345"})
    assert response.status_code == 302
    assert not Passkey.objects.exists()
    assert client.get("/account/two-factor/").status_code == 200  # still verified


# --- Signing in -------------------------------------------------------------------------------


def test_the_login_page_offers_sign_in_with_a_passkey(client, db):
    html = client.get("/account/login/").content.decode()
    assert ">Sign in with a passkey</button>" in html
    assert 'data-options-url="/account/login/passkey/options/"' in html


def test_a_passkey_signs_in_without_a_password_as_both_factors(client, passkey, authenticator):
    passkey.user.is_staff = True
    passkey.user.save()

    response = sign_in(client, authenticator)

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert verified_device(client) == passkey.persistent_id
    assert client.get("/admin/").status_code == 200  # OTPAdminSite: verified by the passkey


def test_a_passkey_without_user_verification_cannot_sign_in_alone(client, person):
    authenticator = SoftAuthenticator(user_verification=False)
    log_in(client, person)
    add_passkey(client, authenticator)
    client.logout()

    response = sign_in(client, authenticator, user_verified=True)

    assert response.status_code == 400
    assert "Log in with your password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_replayed_sign_in_is_refused(client, passkey, authenticator):
    request = options(client, "/account/login/passkey/options/")
    body = {"passkey": json.dumps(authenticator.get(request))}
    assert client.post("/account/login/passkey/", body).status_code == 302
    client.logout()
    response = client.post("/account/login/passkey/", body)
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_failed_passkeys_are_throttled_on_the_page(client, passkey, authenticator):
    sign_in(client, authenticator, origin="https://evil.example")
    response = sign_in(client, authenticator)
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


# --- After a password -------------------------------------------------------------------------


def test_after_the_password_a_passkey_is_offered_first(client, passkey, person):
    make_device(person)
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    html = client.get(response["Location"]).content.decode()
    assert html.index("Use your passkey</button>") < html.index('name="code"')


def test_a_person_with_only_a_passkey_is_asked_for_no_code(client, passkey):
    response = client.post("/account/login/", {"username": "alice", "password": PASSWORD})
    html = client.get(response["Location"]).content.decode()
    assert "Use your passkey</button>" in html
    assert 'name="code"' not in html


def test_password_then_passkey_logs_in_verified(client, passkey, authenticator):
    response = client.post(
        "/account/login/", {"username": "alice", "password": PASSWORD, "next": "/account/"}
    )
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session  # not logged in before the second step
    request = options(client, "/account/login/passkey/second-factor/options/")
    assert [c["id"] for c in request["allowCredentials"]] == [authenticator.id]

    answer = {"passkey": json.dumps(authenticator.get(request)), "next": "/account/two-factor/"}
    response = client.post("/account/login/code/", answer)

    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    assert verified_device(client) == passkey.persistent_id


def test_the_second_step_refuses_someone_elses_passkey(client, passkey, authenticator):
    bob = make_person("bob")
    make_device(bob)
    client.post("/account/login/", {"username": "bob", "password": PASSWORD})
    request = options(client, "/account/login/passkey/second-factor/options/")
    assert request["allowCredentials"] == []
    response = client.post(
        "/account/login/code/", {"passkey": json.dumps(authenticator.get(request))}
    )
    assert response.status_code == 400
    assert "_auth_user_id" not in client.session


def test_second_step_options_need_a_password_first(client, db):
    assert client.post("/account/login/passkey/second-factor/options/").status_code == 403


# --- Admin ------------------------------------------------------------------------------------


def test_staff_see_and_remove_passkeys_per_person(passkey, authenticator, staff_client):
    listing = staff_client.get(f"/admin/twofactor/passkey/?user__id__exact={passkey.user_id}")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "Laptop" in html
    assert authenticator.id not in html
    change = staff_client.get(f"/admin/twofactor/passkey/{passkey.pk}/change/")
    assert change.status_code == 200
    assert authenticator.id not in change.content.decode()

    response = staff_client.post(f"/admin/twofactor/passkey/{passkey.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Passkey.objects.exists()


def test_staff_cannot_add_a_passkey_for_someone(staff_client, db):
    assert staff_client.get("/admin/twofactor/passkey/add/").status_code == 403


def test_the_admin_login_leads_to_a_passkey_sign_in(client, db):
    html = client.get("/admin/login/?next=/admin/").content.decode()
    assert '<a href="/account/login/?next=/admin/">Use a passkey instead</a>' in html


def test_resetting_a_second_factor_removes_the_passkeys(passkey, staff_client):
    response = staff_client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [passkey.user_id]},
    )
    assert response.status_code == 302
    assert not Passkey.objects.exists()
