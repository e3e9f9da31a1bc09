"""Each security event kind is recorded once for its action, on every surface that does it (the
pages, passkeys, the mobile API, the admin), with the request's client address, user agent and
id, and never a secret."""

from __future__ import annotations

import json

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.test import Client

from apps.twofactor import events
from apps.twofactor.models import Passkey, SealedTOTPDevice, SecurityEvent
from apps.twofactor.services import pending_totp_device
from apps.twofactor.verification import verify_code

from .authenticator import SoftAuthenticator
from .conftest import (
    PASSWORD,
    bearer,
    code_for,
    make_backup_codes,
    make_device,
    make_person,
    mark_reauthenticated,
    phone_for,
    wrong_code,
)
from .test_passkey_pages import add_passkey, log_in, options, sign_in

pytestmark = pytest.mark.django_db

AGENT = "TestBrowser/1.0 (events)"
BACKUP_CODES = ["abcd2345", "efgh6723"]


def kinds(user=None) -> list[str]:
    """The kinds recorded for `user` (or for nobody, with None), oldest first."""
    return list(
        SecurityEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True)
    )


def only(kind: str, user) -> SecurityEvent:
    return SecurityEvent.objects.get(user=user, kind=kind)


def api(client, method, path, token=None, body=None):
    headers = {"User-Agent": AGENT, **(bearer(token) if token else {})}
    kwargs = {"headers": headers}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def api_login(client, username="alice", password=PASSWORD):
    return api(
        client, "post", "/api/v1/auth/token", body={"username": username, "password": password}
    )


def verified_token(client, device) -> str:
    token = api_login(client).json()["token"]
    assert api(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device)}).json()[
        "status"
    ]
    return token


def page_login(client, username="alice", password=PASSWORD):
    return client.post(
        "/account/login/",
        {"username": username, "password": password},
        headers={"User-Agent": AGENT},
    )


@pytest.fixture
def events_only_from_here(person):
    """The person's events so far (fixtures issue tokens) forgotten: only the test's count."""
    SecurityEvent.objects.all().delete()
    return person


# --- Logging in -----------------------------------------------------------------------------------


def test_a_password_login_is_recorded_with_the_request(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    response = page_login(client)

    assert response.status_code == 302
    assert kinds(person) == ["login"]
    event = only("login", person)
    assert event.ip == "127.0.0.1"
    assert event.user_agent == AGENT
    assert event.request_id == response["X-Request-ID"]
    assert event.details == {"via": "pages", "second_factor": None}


def test_a_login_with_a_code_is_recorded_once_after_the_code(client, device):
    person = device.user
    page_login(client)
    assert kinds(person) == []  # the password alone is not a login
    response = client.post("/account/login/code/", {"code": code_for(device)})

    assert response.status_code == 302
    assert kinds(person) == ["login"]
    assert only("login", person).details == {"via": "pages", "second_factor": "totp"}


def test_a_forwarded_client_address_is_the_one_recorded(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    client.post(
        "/account/login/",
        {"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.7"},  # from the trusted local proxy
    )
    assert only("login", person).ip == "198.51.100.7"


def test_a_wrong_password_is_recorded_against_the_account(client, person):
    page_login(client, password="not the password")
    assert kinds(person) == ["login_failed"]
    assert only("login_failed", person).details == {"via": "pages"}


def test_a_wrong_password_for_nobody_is_recorded_without_a_user_or_the_name(client, db):
    page_login(client, username="mallory", password="hunter2")

    event = SecurityEvent.objects.get()
    assert (event.kind, event.user) == ("login_failed", None)
    assert "mallory" not in json.dumps(event.details)


def test_a_passkey_sign_in_is_a_login(client, person):
    authenticator = SoftAuthenticator()
    log_in(client, person)
    add_passkey(client, authenticator)
    client.logout()
    SecurityEvent.objects.all().delete()

    assert sign_in(client, authenticator).status_code == 302

    assert kinds(person) == ["login"]
    assert only("login", person).details == {"via": "pages", "second_factor": "passkey"}


def test_a_refused_passkey_sign_in_is_a_failed_login_then_throttled(client, person):
    authenticator = SoftAuthenticator()
    log_in(client, person)
    add_passkey(client, authenticator)
    client.logout()
    SecurityEvent.objects.all().delete()

    assert sign_in(client, authenticator, origin="https://evil.example").status_code == 400
    assert sign_in(client, authenticator).status_code == 429

    assert kinds(person) == ["login_failed", "otp_throttled"]
    assert only("login_failed", person).details == {
        "method": "passkey",
        "reason": "passkey-wrong-origin",
    }


def test_a_refused_passkey_as_second_factor_is_a_failed_code(client, person):
    authenticator = SoftAuthenticator()
    log_in(client, person)
    add_passkey(client, authenticator)
    client.logout()
    page_login(client)
    SecurityEvent.objects.all().delete()
    answer = authenticator.get(
        options(client, "/account/login/passkey/second-factor/options/"),
        origin="https://evil.example",
    )

    client.post("/account/login/code/", {"passkey": json.dumps(answer)})

    assert kinds(person) == ["otp_failed"]
    assert only("otp_failed", person).details == {
        "code_kind": "passkey",
        "reason": "passkey-wrong-origin",
    }


def test_the_admin_login_is_recorded(client, db):
    staff = make_person("root", is_staff=True, is_superuser=True)
    device = make_device(staff)
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": PASSWORD, "otp_token": code_for(device)},
    )
    assert response.status_code == 302
    assert kinds(staff) == ["login"]
    assert only("login", staff).details == {"via": "admin", "second_factor": "totp"}


def test_a_wrong_password_in_the_admin_is_recorded(client, db):
    staff = make_person("root", is_staff=True)
    make_device(staff)
    client.post("/admin/login/", {"username": "root", "password": "nope", "otp_token": "123456"})
    assert kinds(staff) == ["login_failed"]
    assert only("login_failed", staff).details == {"via": "admin"}


# --- Codes ----------------------------------------------------------------------------------------


def test_a_wrong_code_is_recorded(client, device):
    page_login(client)
    client.post("/account/login/code/", {"code": wrong_code(device)})
    assert kinds(device.user) == ["otp_failed"]
    assert only("otp_failed", device.user).details == {"code_kind": "totp"}


def test_a_throttled_code_is_recorded(client, device, settings):
    settings.OTP_THROTTLE_FACTOR = 60
    page_login(client)
    client.post("/account/login/code/", {"code": wrong_code(device)})
    response = client.post("/account/login/code/", {"code": code_for(device)})

    assert response.status_code == 429
    assert kinds(device.user) == ["otp_failed", "otp_throttled"]


def test_the_failure_that_locks_is_recorded_after_it(client, device, settings):
    settings.OTP_MAX_FAILURES = 1
    settings.OTP_THROTTLE_FACTOR = 0
    page_login(client)
    client.post("/account/login/code/", {"code": wrong_code(device)})
    assert kinds(device.user) == ["otp_failed", "locked"]
    assert only("locked", device.user).details == {"failures": 1}


def test_a_backup_code_on_a_locked_account_is_used_and_unlocks_it(client, device, settings):
    settings.OTP_MAX_FAILURES = 1
    settings.OTP_THROTTLE_FACTOR = 0
    make_backup_codes(device.user, BACKUP_CODES)
    page_login(client)
    client.post("/account/login/code/", {"code": wrong_code(device)})
    client.post("/account/login/code/", {"code": BACKUP_CODES[0]})

    assert kinds(device.user) == ["otp_failed", "locked", "backup_code_used", "unlocked", "login"]
    assert only("backup_code_used", device.user).details == {"left": 1}
    assert only("unlocked", device.user).details == {"by": "backup_code"}


def test_staff_unlocking_is_recorded(staff_client, device, settings):
    settings.OTP_MAX_FAILURES = 1
    settings.OTP_THROTTLE_FACTOR = 0
    person = device.user
    verify_code(user=person, code=wrong_code(device))
    staff_client.post(
        "/admin/accounts/user/",
        {"action": "unlock_second_factor", "_selected_action": [person.pk]},
    )
    assert kinds(person) == ["otp_failed", "locked", "unlocked"]
    assert only("unlocked", person).details == {"by": "staff"}


# --- The mobile API -------------------------------------------------------------------------------


def test_api_tokens_issued_and_revoked_are_recorded(client, events_only_from_here):
    person = events_only_from_here
    token = api_login(client).json()["token"]
    assert api(client, "delete", "/api/v1/auth/token", token).status_code == 204

    assert kinds(person) == ["token_issued", "token_revoked"]
    issued = only("token_issued", person)
    assert issued.details["method"] == "password"
    assert issued.user_agent == AGENT
    assert only("token_revoked", person).details == {"token_id": issued.details["token_id"]}


def test_a_wrong_password_in_the_api_is_recorded(client, events_only_from_here):
    api_login(client, password="wrong")
    assert kinds(events_only_from_here) == ["login_failed"]
    assert only("login_failed", events_only_from_here).details == {"via": "api"}


def test_a_wrong_code_in_the_api_is_recorded(client, device):
    token = api_login(client).json()["token"]
    api(client, "post", "/api/v1/otp/verify", token, {"token": wrong_code(device)})
    assert kinds(device.user) == ["token_issued", "otp_failed"]


def test_enrolling_removing_and_backup_codes_in_the_api_are_recorded(client, person):
    token = api_login(client).json()["token"]
    created = api(client, "post", "/api/v1/otp/devices", token, {}).json()
    device = SealedTOTPDevice.objects.get(pk=created["id"])
    confirm = f"/api/v1/otp/devices/{device.pk}/confirm"
    assert api(client, "post", confirm, token, {"token": code_for(device)}).json()["status"]
    assert api(client, "post", "/api/v1/otp/backup-codes", token, {}).status_code == 201
    assert api(client, "post", "/api/v1/auth/reauthenticate", token, {"password": PASSWORD}).json()[
        "status"
    ]
    assert api(client, "delete", f"/api/v1/otp/devices/{device.pk}", token).status_code == 204

    assert kinds(person) == [
        "token_issued",
        "device_added",
        "backup_codes_generated",
        "reauthenticated",
        "device_removed",
    ]
    assert only("device_added", person).details == {"device_id": device.pk, "device_kind": "totp"}
    assert only("backup_codes_generated", person).details == {"count": 10}
    assert only("reauthenticated", person).details == {"by": "password"}
    assert only("device_removed", person).user_agent == AGENT


def test_a_backup_code_in_the_api_is_recorded(client, device):
    make_backup_codes(device.user, BACKUP_CODES)
    token = api_login(client).json()["token"]
    api(client, "post", "/api/v1/otp/verify", token, {"token": BACKUP_CODES[1]})
    assert kinds(device.user) == ["token_issued", "backup_code_used"]


# --- The pages' factors ---------------------------------------------------------------------------


def test_enrolling_on_the_pages_is_recorded(client, person):
    client.force_login(person)
    session = client.session
    mark_reauthenticated(session)
    session.save()
    SecurityEvent.objects.all().delete()
    client.post("/account/two-factor/add/")
    sealed = client.session["twofactor_pending_enrolment"]["sealed_key"]
    phone = phone_for(pending_totp_device(user=person, sealed_key=sealed))
    client.post("/account/two-factor/add/", {"code": phone.now()})

    assert kinds(person) == ["device_added"]


def test_a_passkey_added_and_removed_is_recorded_as_passkey_events(client, person):
    authenticator = SoftAuthenticator()
    log_in(client, person)
    SecurityEvent.objects.all().delete()
    response = add_passkey(client, authenticator, headers={"User-Agent": AGENT})
    assert response.status_code == 302
    passkey_id = Passkey.objects.get(user=person).pk
    answer = authenticator.get(options(client, "/account/login/passkey/second-factor/options/"))
    response = client.post(
        f"/account/two-factor/passkeys/{passkey_id}/remove/",
        {"passkey": json.dumps(answer)},
        headers={"User-Agent": AGENT},
    )
    assert response.status_code == 302

    # An authenticator's kinds stay the authenticators' own.
    assert kinds(person) == ["passkey_added", "passkey_removed"]
    for kind in ("passkey_added", "passkey_removed"):
        event = only(kind, person)
        assert event.details == {"device_id": passkey_id, "device_kind": "passkey"}
        assert (event.ip, event.user_agent) == ("127.0.0.1", AGENT)
        assert event.request_id


def test_a_passkey_added_and_removed_in_the_api_is_recorded(client, person):
    authenticator = SoftAuthenticator()
    token = api_login(client).json()["token"]
    SecurityEvent.objects.all().delete()
    creation = api(client, "post", "/api/v1/passkeys/register/options", token).json()
    response = api(
        client, "post", "/api/v1/passkeys/register", token, authenticator.create(creation)
    )
    assert response.status_code == 201
    passkey_id = response.json()["id"]
    assert api(client, "delete", f"/api/v1/passkeys/{passkey_id}", token).status_code == 204

    assert kinds(person) == ["passkey_added", "passkey_removed"]
    assert only("passkey_removed", person).details == {
        "device_id": passkey_id,
        "device_kind": "passkey",
    }
    assert only("passkey_added", person).user_agent == AGENT


def test_a_passkey_removed_by_staff_is_recorded_as_theirs(person, staff_client):
    authenticator = SoftAuthenticator()
    own = Client()
    log_in(own, person)
    add_passkey(own, authenticator)
    passkey_id = Passkey.objects.get(user=person).pk
    SecurityEvent.objects.all().delete()

    response = staff_client.post(f"/admin/twofactor/passkey/{passkey_id}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert kinds(person) == ["passkey_removed"]
    assert only("passkey_removed", person).details == {
        "device_id": passkey_id,
        "device_kind": "passkey",
        "by": "staff",
    }


def test_a_passkey_whose_counter_went_back_is_recorded_as_a_suspected_clone(client, person):
    authenticator = SoftAuthenticator()
    token = api_login(client).json()["token"]
    creation = api(client, "post", "/api/v1/passkeys/register/options", token).json()
    api(client, "post", "/api/v1/passkeys/register", token, authenticator.create(creation))
    passkey = Passkey.objects.get(user=person)
    request = api(client, "post", "/api/v1/passkeys/authenticate/options", token).json()
    answer = authenticator.get(request, counter=5)
    assert api(client, "post", "/api/v1/passkeys/authenticate", token, answer).status_code == 200
    SecurityEvent.objects.all().delete()

    request = api(client, "post", "/api/v1/passkeys/authenticate/options", token).json()
    copied = authenticator.get(request, counter=3)
    response = api(client, "post", "/api/v1/passkeys/authenticate", token, copied)

    assert response.status_code == 400
    # Recorded for its owner, with the request, beside the failure every refused assertion is.
    assert kinds(person) == ["passkey_clone_suspected", "otp_failed"]
    event = only("passkey_clone_suspected", person)
    assert event.details == {
        "device_id": passkey.pk,
        "device_kind": "passkey",
        "sign_count": 3,
        "stored_sign_count": 5,
    }
    assert (event.ip, event.user_agent) == ("127.0.0.1", AGENT)
    assert event.request_id == response["X-Request-ID"]


def test_staff_resetting_the_second_factor_is_recorded(staff_client, device):
    person = device.user
    SecurityEvent.objects.all().delete()
    staff_client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [person.pk]},
    )
    assert kinds(person) == ["device_removed"]  # no token to revoke
    assert only("device_removed", person).details == {"by": "staff", "count": 1}


# --- What a record holds --------------------------------------------------------------------------


def test_no_event_holds_a_secret(client, person):
    """A whole life: enrol, backup codes, wrong and right codes, a backup code, tokens. Nothing
    secret in any row."""
    token = api_login(client).json()["token"]
    created = api(client, "post", "/api/v1/otp/devices", token, {}).json()
    device = SealedTOTPDevice.objects.get(pk=created["id"])
    first = code_for(device)
    api(client, "post", f"/api/v1/otp/devices/{device.pk}/confirm", token, {"token": first})
    codes = api(client, "post", "/api/v1/otp/backup-codes", token, {}).json()["codes"]
    wrong = wrong_code(device)
    api(client, "post", "/api/v1/otp/verify", token, {"token": wrong})
    api(client, "post", "/api/v1/otp/verify", token, {"token": codes[0]})
    api_login(client, password="a wrong password")
    api(client, "delete", "/api/v1/auth/token", token)

    rows = json.dumps(list(SecurityEvent.objects.values()), cls=DjangoJSONEncoder).lower()
    secret = phone_for(device).secret.lower()
    assert len(SecurityEvent.objects.filter(user=person)) >= 7
    for value in [PASSWORD, "a wrong password", token, secret, device.bin_key.hex(), first, wrong]:
        assert value.lower() not in rows
    for code in codes:
        assert code not in rows
    assert device.sealed_key.lower() not in rows


def test_record_refuses_an_unknown_kind_or_a_secret_detail(person):
    with pytest.raises(ValueError, match="unknown security event kind"):
        events.record("logged_in", user=person)
    with pytest.raises(ValueError, match="no secret"):
        events.record("login", user=person, password="x")
    with pytest.raises(ValueError, match="no secret"):
        events.record("backup_codes_generated", user=person, codes=["abcd2345"])
    assert not SecurityEvent.objects.filter(user=person).exists()


def test_password_kinds_can_be_recorded_without_a_request(person):
    events.record("password_changed", user=person)
    events.record("password_reset", user=person)
    assert kinds(person) == ["password_changed", "password_reset"]
    assert only("password_changed", person).ip is None
