"""TWO_FACTOR_REQUIRED: `none`, `staff` (the default) or `all`. Someone it covers who has no
second factor goes, after the password, to enrolment and can open nothing else on the pages; the
API answers their token 403 enrolment-required everywhere but enrolment and the token's own
endpoints. The admin always needs a verified factor."""

from __future__ import annotations

import json

import pyotp
import pytest
from django_otp import DEVICE_ID_SESSION_KEY

from apps.twofactor.models import Passkey, PasskeyChallenge, SealedTOTPDevice
from tests.problems import assert_problem
from tests.test_settings import clean_env, run_python

from .authenticator import SoftAuthenticator
from .conftest import PASSWORD, bearer, code_for, make_person, secret_from_page

pytestmark = pytest.mark.django_db

ACCOUNT_PAGES = ["/account/two-factor/", "/account/two-factor/backup-codes/"]
ADD = "/account/two-factor/add/"


def page_login(client, username: str):
    return client.post("/account/login/", {"username": username, "password": PASSWORD})


def api_login(client, username: str) -> dict:
    response = client.post(
        "/api/v1/auth/token",
        {"username": username, "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 201
    return response.json()


def call(client, method, path, token, body=None):
    kwargs = {"headers": bearer(token)}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def people():
    return {
        "staff": make_person("sam", is_staff=True),
        "superuser": make_person("root", is_superuser=True),
        "person": make_person("alice"),
    }


# (policy, who) -> covered?
COVERAGE = {
    ("none", "staff"): False,
    ("none", "superuser"): False,
    ("none", "person"): False,
    ("staff", "staff"): True,
    ("staff", "superuser"): True,
    ("staff", "person"): False,
    ("all", "staff"): True,
    ("all", "superuser"): True,
    ("all", "person"): True,
}


@pytest.mark.parametrize(("policy", "who"), COVERAGE, ids=[f"{p}-{w}" for p, w in COVERAGE])
def test_the_pages_after_the_password(client, settings, policy, who):
    settings.TWO_FACTOR_REQUIRED = policy
    person = people()[who]
    landed = page_login(client, person.username)
    covered = COVERAGE[(policy, who)]
    if covered:
        assert landed["Location"].startswith(ADD)
        for path in ACCOUNT_PAGES:
            sent = client.get(path)
            assert sent.status_code == 302
            assert sent["Location"].startswith(ADD), path
        assert client.get(ADD, follow=True).status_code == 200  # enrolment itself opens
    else:
        assert landed["Location"] == "/account/two-factor/"
        for path in ACCOUNT_PAGES:
            assert client.get(path).status_code == 200, path


@pytest.mark.parametrize(("policy", "who"), COVERAGE, ids=[f"{p}-{w}" for p, w in COVERAGE])
def test_the_api_for_a_token_without_a_factor(client, settings, policy, who):
    settings.TWO_FACTOR_REQUIRED = policy
    person = people()[who]
    issued = api_login(client, person.username)
    covered = COVERAGE[(policy, who)]
    assert issued["second_factor_required"] is covered
    token = issued["token"]
    verify = call(client, "post", "/api/v1/otp/verify", token, {"token": "123456"})
    check = call(client, "get", "/api/v1/otp/check/123456", token)
    passkey_options = call(client, "post", "/api/v1/passkeys/authenticate/options", token)
    passkey = call(client, "post", "/api/v1/passkeys/authenticate", token, {})
    if covered:
        for refused in (
            verify,
            check,
            passkey_options,
            passkey,
            call(client, "post", "/api/v1/otp/backup-codes", token, {}),
            call(client, "delete", "/api/v1/otp/devices/1", token),
        ):
            body = assert_problem(refused, 403, type="enrolment-required")
            assert "otp/devices" in body["detail"]
            assert "passkeys/register" in body["detail"]
        assert not PasskeyChallenge.objects.exists()  # refused before a challenge was made
    else:
        assert verify.json() == {"status": False}
        assert check.json() == {"status": False}
        assert passkey_options.json()["allowCredentials"] == []  # no passkey yet
        assert_problem(passkey, 400)  # an empty answer
    # Enrolment and the token's own endpoints answer either way, and so does a passwordless
    # sign-in, which has no token.
    assert call(client, "get", "/api/v1/otp/devices", token).status_code == 200
    assert call(client, "post", "/api/v1/otp/devices", token, {}).status_code == 201
    assert call(client, "post", "/api/v1/passkeys/register/options", token).status_code == 200
    assert client.post("/api/v1/passkeys/authenticate/options").status_code == 200
    reauth = call(client, "post", "/api/v1/auth/reauthenticate", token, {"password": PASSWORD})
    assert reauth.json()["status"] is True
    assert call(client, "delete", "/api/v1/auth/token", token).status_code == 204


def test_once_enrolled_the_pages_open(client, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    make_person("alice")
    page_login(client, "alice")  # the login started the enrolment: the page shows its key
    phone = pyotp.TOTP(secret_from_page(client.get(ADD).content.decode()))
    assert client.get("/account/two-factor/").status_code == 302
    assert client.post(ADD, {"code": phone.now()}).status_code == 302
    assert SealedTOTPDevice.objects.get().confirmed
    assert client.get("/account/two-factor/").status_code == 200


def test_once_enrolled_the_api_answers(client, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    make_person("alice")
    token = api_login(client, "alice")["token"]
    new = call(client, "post", "/api/v1/otp/devices", token, {}).json()
    device = SealedTOTPDevice.objects.get(pk=new["id"])
    confirm = f"/api/v1/otp/devices/{device.pk}/confirm"
    assert call(client, "post", confirm, token, {"token": code_for(device)}).json()["status"]
    verify = call(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device, steps=1)})
    assert verify.json() == {"status": True}
    assert call(client, "post", "/api/v1/otp/backup-codes", token, {}).status_code == 201


@pytest.mark.parametrize("policy", ["none", "staff", "all"])
def test_the_admin_always_needs_a_verified_factor(client, settings, policy):
    settings.TWO_FACTOR_REQUIRED = policy
    make_person("sam", is_staff=True, is_superuser=True)
    client.post("/account/login/", {"username": "sam", "password": PASSWORD})
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    refused = client.post("/admin/login/", {"username": "sam", "password": PASSWORD})
    assert b"The admin needs a second factor" in refused.content


def test_an_unknown_policy_stops_startup():
    result = run_python(
        "import django; django.setup()", clean_env(ENVIRONMENT="local", TWO_FACTOR_REQUIRED="most")
    )
    assert result.returncode != 0
    assert "TWO_FACTOR_REQUIRED must be none, staff or all" in result.stderr


# --- A passkey as the first factor (issue #18: it counts wherever an authenticator does) ------


def passkey_options(client, url: str = "/account/two-factor/passkeys/options/") -> dict:
    response = client.post(url)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.parametrize(("policy", "who"), [("staff", "staff"), ("all", "person")])
def test_the_enrolment_page_offers_a_passkey_that_satisfies_the_policy(
    client, settings, policy, who
):
    settings.TWO_FACTOR_REQUIRED = policy
    person = people()[who]
    landed = page_login(client, person.username)
    assert landed["Location"].startswith(ADD)
    page = client.get(landed["Location"]).content.decode()
    assert ">Add a passkey</button>" in page
    assert 'data-options-url="/account/two-factor/passkeys/options/"' in page
    assert '<script src="/static/js/passkeys.js" defer></script>' in page
    authenticator = SoftAuthenticator()
    answer = authenticator.create(passkey_options(client))

    body = {"name": "Laptop", "passkey": json.dumps(answer), "next": "/account/two-factor/"}
    response = client.post(ADD, body)

    assert response.status_code == 302
    assert response["Location"] == "/account/two-factor/"
    passkey = Passkey.objects.get(user=person)
    assert passkey.name == "Laptop"
    assert client.session[DEVICE_ID_SESSION_KEY] == passkey.persistent_id
    assert not SealedTOTPDevice.objects.exists()  # the key shown beside it was dropped
    overview = client.get("/account/two-factor/")
    assert overview.status_code == 200
    assert "Passkey “Laptop” added." in overview.content.decode()
    for path in ACCOUNT_PAGES:
        assert client.get(path).status_code == 200, path


def test_the_enrolment_page_without_a_started_key_offers_a_passkey_too(client, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    make_person("alice")
    page_login(client, "alice")
    session = client.session
    session.pop("twofactor_pending_enrolment")  # e.g. a tab whose enrolment ended
    session.save()
    page = client.get(ADD).content.decode()
    assert ">Show the QR code</button>" in page
    assert ">Add a passkey</button>" in page
    answer = SoftAuthenticator().create(passkey_options(client))
    assert client.post(ADD, {"passkey": json.dumps(answer)}).status_code == 302
    assert client.get("/account/two-factor/").status_code == 200


def test_a_refused_passkey_on_the_enrolment_page_adds_nothing(client, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    make_person("alice")
    page_login(client, "alice")
    request = passkey_options(client)
    answer = SoftAuthenticator().create(request, origin="https://evil.example")

    response = client.post(ADD, {"name": "X", "passkey": json.dumps(answer)})

    assert response.status_code == 400
    page = response.content.decode()
    assert "That passkey answer was made for another site." in page
    assert 'class="secret"' in page  # the enrolment page again, its key still there
    assert not Passkey.objects.exists()
    assert client.get("/account/two-factor/")["Location"].startswith(ADD)
    for body in ({"passkey": ""}, {"passkey": "not json"}):
        assert client.post(ADD, body).status_code == 400
    assert not Passkey.objects.exists()


def test_a_person_with_a_factor_cannot_add_a_passkey_by_the_enrolment_page_unverified(
    client, settings
):
    settings.TWO_FACTOR_REQUIRED = "all"
    person = make_person("alice")
    SealedTOTPDevice.objects.create(user=person, name="Phone", confirmed=True)
    client.force_login(person)  # the password only
    refused = client.post("/account/two-factor/passkeys/options/")
    assert refused["Location"].startswith("/account/login/code/")
    response = client.post(ADD, {"passkey": "{}"})
    assert response["Location"].startswith("/account/login/code/")
    assert not Passkey.objects.exists()


def test_a_passkey_registered_over_the_api_satisfies_the_policy(client, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    make_person("alice")
    token = api_login(client, "alice")["token"]
    refused = call(client, "post", "/api/v1/otp/backup-codes", token, {})
    assert_problem(refused, 403, type="enrolment-required")
    options = call(client, "post", "/api/v1/passkeys/register/options", token).json()
    answer = SoftAuthenticator().create(options)
    assert call(client, "post", "/api/v1/passkeys/register", token, answer).status_code == 201
    assert call(client, "post", "/api/v1/otp/backup-codes", token, {}).status_code == 201
    assert api_login(client, "alice")["second_factor_required"] is True  # then the passkey
