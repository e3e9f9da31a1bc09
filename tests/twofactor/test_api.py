"""The mobile API: tokens, enrolment, verification, and problem+json for every error."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.accounts.models import UserToken
from apps.twofactor.models import SealedTOTPDevice
from tests.problems import assert_problem

from .conftest import (
    PASSWORD,
    bearer,
    code_for,
    make_backup_codes,
    make_device,
    wrong_code,
)

pytestmark = pytest.mark.django_db


def post(client, path, body, token=None):
    headers = bearer(token) if token else {}
    return client.post(path, body, content_type="application/json", headers=headers)


def login(client, username="alice", password=PASSWORD):
    return post(client, "/api/v1/auth/token", {"username": username, "password": password})


def enrol(client, token) -> SealedTOTPDevice:
    response = post(client, "/api/v1/otp/devices", {}, token)
    assert response.status_code == 201, response.content
    return SealedTOTPDevice.objects.get(pk=response.json()["id"])


# --- Tokens ---------------------------------------------------------------------------------------


def test_a_password_gives_a_token_and_says_a_second_factor_is_needed(client, person, settings):
    settings.TWO_FACTOR_REQUIRED = "all"
    response = login(client)
    assert response.status_code == 201
    body = response.json()
    assert body["second_factor_required"] is True
    assert body["enrolled"] is False
    assert len(body["token"]) >= 43  # 256 bits, URL-safe base64


def test_without_otp_required_a_person_without_device_needs_no_second_factor(
    client, person, settings
):
    settings.TWO_FACTOR_REQUIRED = "none"
    assert login(client).json()["second_factor_required"] is False


def test_an_enrolled_person_always_needs_the_second_factor(client, device, settings):
    settings.TWO_FACTOR_REQUIRED = "none"
    body = login(client).json()
    assert body["second_factor_required"] is True
    assert body["enrolled"] is True


def test_tokens_are_stored_only_as_a_digest(client, person):
    key = login(client).json()["token"]
    stored = UserToken.objects.get(user=person)
    assert key not in (stored.digest, stored.key_prefix)
    assert not UserToken.objects.filter(digest__contains=key).exists()
    assert stored.key_prefix == key[:8]


def test_wrong_password_is_401_problem(client, person):
    body = assert_problem(login(client, password="wrong"), 401)
    assert body["detail"] == "That username and password do not match."


def test_unknown_user_is_the_same_401(client, db):
    response = login(client, username="nobody")
    body = assert_problem(response, 401)
    assert body["detail"] == "That username and password do not match."
    assert response["WWW-Authenticate"] == 'Bearer realm="dbapi"'


def test_repeated_wrong_passwords_are_throttled_with_retry_after(client, person, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert_problem(login(client, password="wrong"), 401)
    response = login(client)  # even the right password is not checked now
    assert_problem(response, 429)
    assert 1 <= int(response["Retry-After"]) <= settings.LOGIN_FAILURE_WINDOW


def test_with_redis_down_passwords_are_still_checked_unthrottled(
    client, person, settings, redis_down
):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(3):
        assert_problem(login(client, password="wrong"), 401)
    assert login(client).status_code == 201


def test_a_right_password_clears_the_failures(client, person, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        login(client, password="wrong")
    assert login(client).status_code == 201
    for _ in range(2):
        login(client, password="wrong")
    assert login(client).status_code == 201


def test_an_inactive_person_gets_no_token(client, person):
    person.is_active = False
    person.save()
    assert_problem(login(client), 401)


def test_a_revoked_token_is_refused(client, person, api_token):
    response = client.delete("/api/v1/auth/token", headers=bearer(api_token))
    assert response.status_code == 204
    assert not UserToken.objects.exists()
    assert_problem(post(client, "/api/v1/otp/devices", {}, api_token), 401)


def test_an_expired_token_is_refused(client, person, api_token):
    UserToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = post(client, "/api/v1/otp/devices", {}, api_token)
    assert_problem(response, 401)
    assert response["WWW-Authenticate"] == 'Bearer realm="dbapi"'
    assert_problem(post(client, "/api/v1/otp/verify", {"token": "123456"}, api_token), 401)


def test_tokens_expire_after_the_configured_lifetime(client, person, settings):
    settings.USER_TOKEN_LIFETIME = 600
    login(client)
    token = UserToken.objects.get()
    assert token.expires_at - token.created_at == pytest.approx(
        timedelta(seconds=600), abs=timedelta(seconds=2)
    )


def test_a_stale_token_does_not_stop_logging_in_again(client, person):
    response = client.post(
        "/api/v1/auth/token",
        {"username": "alice", "password": PASSWORD},
        content_type="application/json",
        headers=bearer("expired-or-garbage"),
    )
    assert response.status_code == 201


# --- Enrolment ------------------------------------------------------------------------------------


def test_a_new_device_comes_with_its_provisioning_uri_and_qr_code(client, person, api_token):
    response = post(client, "/api/v1/otp/devices", {"name": "Work phone"}, api_token)
    assert response.status_code == 201
    body = response.json()
    device = SealedTOTPDevice.objects.get(pk=body["id"])
    assert device.confirmed is False
    assert device.name == "Work phone"
    uri = urlsplit(body["provisioning_uri"])
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert unquote(uri.path) == "/dbapi:alice"
    assert query["issuer"] == ["dbapi"]
    assert len(query["secret"][0]) * 5 >= 160  # base32: 5 bits a character
    assert body["qr_svg"].startswith("<svg")
    assert "<path" in body["qr_svg"]


def test_the_issuer_comes_from_settings(client, person, api_token, settings):
    settings.OTP_TOTP_ISSUER = "Example Corp"
    uri = post(client, "/api/v1/otp/devices", {}, api_token).json()["provisioning_uri"]
    assert unquote(urlsplit(uri).path) == "/Example Corp:alice"
    assert parse_qs(urlsplit(uri).query)["issuer"] == ["Example Corp"]


def test_confirming_with_the_first_code_makes_the_device_usable_and_verifies_the_token(
    client, person, api_token
):
    device = enrol(client, api_token)
    assert post(client, "/api/v1/otp/verify", {"token": code_for(device)}, api_token).json() == {
        "status": False
    }  # not usable before it is confirmed
    SealedTOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    response = post(
        client, f"/api/v1/otp/devices/{device.pk}/confirm", {"token": code_for(device)}, api_token
    )
    assert response.json() == {"status": True}
    assert SealedTOTPDevice.objects.get(pk=device.pk).confirmed
    assert UserToken.objects.get().is_verified


def test_confirming_with_a_wrong_code_fails(client, person, api_token):
    device = enrol(client, api_token)
    response = post(
        client, f"/api/v1/otp/devices/{device.pk}/confirm", {"token": wrong_code(device)}, api_token
    )
    assert response.json() == {"status": False}
    assert not SealedTOTPDevice.objects.get(pk=device.pk).confirmed


def test_someone_elses_device_cannot_be_confirmed(client, person, api_token, django_user_model):
    other = make_device(
        django_user_model.objects.create_user("bob", password=PASSWORD), confirmed=False
    )
    response = post(
        client, f"/api/v1/otp/devices/{other.pk}/confirm", {"token": code_for(other)}, api_token
    )
    assert_problem(response, 404)


def test_a_new_enrolment_replaces_an_unfinished_one(client, person, api_token):
    first = enrol(client, api_token)
    second = enrol(client, api_token)
    assert list(SealedTOTPDevice.objects.values_list("pk", flat=True)) == [second.pk]
    assert first.pk != second.pk


def test_adding_a_device_to_an_enrolled_person_needs_a_verified_token(client, device, api_token):
    body = assert_problem(post(client, "/api/v1/otp/devices", {}, api_token), 403)
    assert "verify" in body["detail"]
    assert_problem(client.get("/api/v1/otp/devices", headers=bearer(api_token)), 403)
    assert post(client, "/api/v1/otp/verify", {"token": code_for(device)}, api_token).json() == {
        "status": True
    }
    assert post(client, "/api/v1/otp/devices", {}, api_token).status_code == 201


def test_secrets_never_appear_after_enrolment(client, person, api_token, caplog):
    caplog.set_level(logging.DEBUG)
    response = post(client, "/api/v1/otp/devices", {}, api_token)
    device = SealedTOTPDevice.objects.get(pk=response.json()["id"])
    secret = parse_qs(urlsplit(response.json()["provisioning_uri"]).query)["secret"][0]
    answers = [
        post(
            client,
            f"/api/v1/otp/devices/{device.pk}/confirm",
            {"token": code_for(device)},
            api_token,
        ),
        client.get("/api/v1/otp/devices", headers=bearer(api_token)),
        post(client, "/api/v1/otp/verify", {"token": code_for(device, steps=1)}, api_token),
        client.get(f"/api/v1/otp/check/{code_for(device, steps=1)}", headers=bearer(api_token)),
    ]
    for answer in answers:
        assert secret not in answer.content.decode()
        assert device.bin_key.hex() not in answer.content.decode()
    assert answers[1].json()[0].keys() == {"id", "name", "confirmed", "created_at", "last_used_at"}
    for secret_form in (secret, device.bin_key.hex(), api_token):
        assert secret_form not in caplog.text


# --- Verification ---------------------------------------------------------------------------------


def test_verify_accepts_the_current_code(client, device, api_token):
    response = post(client, "/api/v1/otp/verify", {"token": code_for(device)}, api_token)
    assert response.status_code == 200
    assert response.json() == {"status": True}
    assert UserToken.objects.get().is_verified


def test_verify_refuses_a_wrong_code(client, device, api_token):
    response = post(client, "/api/v1/otp/verify", {"token": wrong_code(device)}, api_token)
    assert response.json() == {"status": False}
    assert not UserToken.objects.get().is_verified


def test_a_replayed_code_is_refused(client, device, api_token):
    code = code_for(device)
    assert post(client, "/api/v1/otp/verify", {"token": code}, api_token).json()["status"]
    SealedTOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_count=0)
    assert post(client, "/api/v1/otp/verify", {"token": code}, api_token).json() == {
        "status": False
    }


def test_check_answers_like_verify(client, device, api_token):
    code = code_for(device)
    response = client.get(f"/api/v1/otp/check/{code}", headers=bearer(api_token))
    assert response.json() == {"status": True}
    SealedTOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
    assert client.get(f"/api/v1/otp/check/{code}", headers=bearer(api_token)).json() == {
        "status": False
    }


def test_a_backup_code_verifies_the_token_once(client, device, api_token):
    make_backup_codes(device.user, ["abcd2345"])
    assert post(client, "/api/v1/otp/verify", {"token": "abcd2345"}, api_token).json() == {
        "status": True
    }
    assert UserToken.objects.get().is_verified
    client.delete("/api/v1/auth/token", headers=bearer(api_token))
    token = login(client).json()["token"]
    assert post(client, "/api/v1/otp/verify", {"token": "abcd2345"}, token).json() == {
        "status": False
    }


def test_throttled_verification_is_429_and_hides_whether_the_code_was_right(
    client, device, api_token
):
    assert post(client, "/api/v1/otp/verify", {"token": wrong_code(device)}, api_token).json() == {
        "status": False
    }
    right = post(client, "/api/v1/otp/verify", {"token": code_for(device)}, api_token)
    wrong = post(client, "/api/v1/otp/verify", {"token": wrong_code(device)}, api_token)
    for response in (right, wrong):
        assert_problem(response, 429)
        assert int(response["Retry-After"]) >= 1
    assert right.json()["detail"] == wrong.json()["detail"]
    assert not UserToken.objects.get().is_verified


def test_throttling_backs_off_exponentially(client, device, api_token, settings):
    settings.OTP_THROTTLE_FACTOR = 10
    for failures in range(1, 4):
        SealedTOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
        post(client, "/api/v1/otp/verify", {"token": wrong_code(device)}, api_token)
        response = post(client, "/api/v1/otp/verify", {"token": code_for(device)}, api_token)
        assert_problem(response, 429)
        assert int(response["Retry-After"]) == pytest.approx(10 * 2 ** (failures - 1), abs=1)


def executed(call) -> list[str]:
    """The SQL statements `call` sent to the database."""
    with CaptureQueriesContext(connection) as queries:
        call()
    return [query["sql"] for query in queries.captured_queries]


def verify(client, code, token):
    return post(client, "/api/v1/otp/verify", {"token": code}, token)


def test_verify_reads_once_and_writes_only_what_changed(client, device, api_token):
    # The token and devices in one read; the code accepted and the token marked in one write.
    first = executed(lambda: verify(client, code_for(device), api_token))
    assert [sql.split()[0] for sql in first] == ["SELECT", "WITH"], first
    assert "twofactor_sealedtotpdevice" in first[0]
    assert "accounts_usertoken" in first[0]
    # With a verified token: the same (the write renews its re-authentication window).
    again = executed(lambda: verify(client, code_for(device, steps=1), api_token))
    assert [sql.split()[0] for sql in again] == ["SELECT", "WITH"], again
    # A wrong code: the read, the device's failure count, its security event, the account's
    # count (and whether it locks).
    failed = executed(lambda: verify(client, wrong_code(device), api_token))
    assert [sql.split()[0] for sql in failed][:2] == ["SELECT", "UPDATE"], failed
    account = [sql for sql in failed[2:] if "SAVEPOINT" not in sql]
    assert all(
        "twofactor_secondfactorlock" in sql or "twofactor_securityevent" in sql for sql in account
    ), failed
    assert sum("twofactor_securityevent" in sql for sql in account) == 1, failed


def test_verify_unseals_each_key_once(client, device, api_token, monkeypatch):
    """Decrypting is the one cost sealing adds to the verify path: once per device checked."""
    from apps.twofactor import sealing

    code = code_for(device)  # the phone's side, before counting the server's
    unseal, unsealed = sealing.unseal, []

    def counting_unseal(sealed: str) -> bytes:
        unsealed.append(sealed)
        return unseal(sealed)

    monkeypatch.setattr(sealing, "unseal", counting_unseal)
    assert verify(client, code, api_token).json() == {"status": True}
    assert unsealed == [device.sealed_key]


def test_verify_keeps_no_state_on_the_connection(client, device, api_token):
    """Nothing prepared, nothing remembered per server session: PgBouncer in transaction mode
    may hand every statement another server connection."""
    statements = executed(lambda: verify(client, code_for(device), api_token))
    statements += executed(lambda: verify(client, wrong_code(device), api_token))
    assert not [sql for sql in statements if sql.split()[0] in ("PREPARE", "EXECUTE")]
    assert not [name for name in vars(connection) if "twofactor" in name]


def test_a_person_without_a_device_gets_false(client, person, api_token):
    assert post(client, "/api/v1/otp/verify", {"token": "123456"}, api_token).json() == {
        "status": False
    }


# --- Every error is problem+json ------------------------------------------------------------------

ERRORS = [
    ("post", "/api/v1/auth/token", {"username": "alice"}, False, 400),
    ("post", "/api/v1/auth/token", "not json", False, 400),
    ("put", "/api/v1/auth/token", {}, False, 405),
    ("post", "/api/v1/otp/verify", "token=123456", True, 415),
    ("delete", "/api/v1/auth/token", None, False, 401),
    ("post", "/api/v1/otp/devices", {}, False, 401),
    ("get", "/api/v1/otp/devices", None, False, 401),
    ("post", "/api/v1/otp/devices", {"name": "x" * 100}, True, 400),
    ("post", "/api/v1/otp/devices/999999/confirm", {"token": "123456"}, True, 404),
    ("post", "/api/v1/otp/devices/1/confirm", {}, True, 400),
    ("post", "/api/v1/otp/verify", {"token": "123456"}, False, 401),
    ("post", "/api/v1/otp/verify", {"token": "12"}, True, 400),
    ("post", "/api/v1/otp/verify", [1, 2], True, 400),
    ("get", "/api/v1/otp/verify", None, True, 405),
    ("post", "/api/v1/otp/check/123456", {}, True, 405),
    ("get", "/api/v1/otp/check/123456", None, False, 401),
    ("get", "/api/v1/otp/check/1", None, True, 400),
]


@pytest.mark.parametrize(("method", "path", "body", "authenticated", "status"), ERRORS)
def test_every_api_error_is_problem_json(
    client, person, api_token, method, path, body, authenticated, status
):
    headers = bearer(api_token) if authenticated else {}
    kwargs = {"headers": headers}
    if body is not None:
        form = isinstance(body, str) and "=" in body
        kwargs.update(data=body if isinstance(body, str) else json.dumps(body))
        kwargs["content_type"] = "application/x-www-form-urlencoded" if form else "application/json"
    response = getattr(client, method)(path, **kwargs)
    body = assert_problem(response, status)
    if status == 400 and "errors" in body:
        assert isinstance(body["errors"], dict)


def test_a_malformed_authorization_header_is_401_problem(client, person):
    response = client.post(
        "/api/v1/otp/verify",
        {"token": "123456"},
        content_type="application/json",
        headers={"Authorization": "Bearer two parts"},
    )
    assert_problem(response, 401)


def test_the_schema_lists_the_mobile_api(client):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).content.decode()
    for path in (
        "/api/v1/auth/token",
        "/api/v1/auth/reauthenticate",
        "/api/v1/otp/devices",
        "/api/v1/otp/devices/{device_id}",
        "/api/v1/otp/devices/{device_id}/confirm",
        "/api/v1/otp/backup-codes",
        "/api/v1/otp/verify",
        "/api/v1/otp/check/{token}",
    ):
        assert re.search(re.escape(path) + r"[\"':]", schema), path


# Each call that changes factors, and what its 403 can be: the schema says so.
SCHEMA_403 = {
    ("/api/v1/otp/devices", "post"): ["reauthentication-required"],
    ("/api/v1/otp/devices/{device_id}", "delete"): [
        "reauthentication-required",
        "enrolment-required",
    ],
    ("/api/v1/otp/devices/{device_id}/confirm", "post"): ["reauthentication-required"],
    ("/api/v1/otp/backup-codes", "post"): ["reauthentication-required", "enrolment-required"],
    ("/api/v1/otp/verify", "post"): ["enrolment-required", "second-factor-locked"],
    ("/api/v1/auth/reauthenticate", "post"): ["second-factor-locked"],
    ("/api/v1/passkeys/authenticate/options", "post"): [
        "enrolment-required",
        "second-factor-locked",
    ],
    ("/api/v1/passkeys/authenticate", "post"): ["enrolment-required", "second-factor-locked"],
}


@pytest.mark.parametrize(("path", "method"), SCHEMA_403, ids=[" ".join(k) for k in SCHEMA_403])
def test_the_schema_documents_each_403_kind(client, path, method):
    schema = client.get("/api/schema/", headers={"Accept": "application/json"}).json()
    described = schema["paths"][path][method]["responses"]["403"]["description"]
    for kind in SCHEMA_403[(path, method)]:
        assert kind in described, (path, method, kind)


@pytest.mark.parametrize("token", ["%20705866", "%09705866", "705866%20", "70%0A5866", "7058 66-"])
def test_check_refuses_a_token_that_cannot_be_a_code_as_verify_does(
    client, device, api_token, token
):
    response = client.get(f"/api/v1/otp/check/{token}", headers=bearer(api_token))
    assert "token" in assert_problem(response, 400)["errors"]
    body = {"token": unquote(token)}
    response = post(client, "/api/v1/otp/verify", body, api_token)
    assert "token" in assert_problem(response, 400)["errors"]
    device.refresh_from_db()
    assert device.throttling_failure_count == 0  # refused before any code was checked


def test_check_and_verify_take_a_code_grouped_as_apps_show_it(client, device, api_token):
    code = code_for(device)
    grouped = f"{code[:3]}%20{code[3:]}"
    response = client.get(f"/api/v1/otp/check/{grouped}", headers=bearer(api_token))
    assert response.json() == {"status": True}
