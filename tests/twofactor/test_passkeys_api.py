"""Passkeys over the mobile API, answered by a software authenticator: registration, a second
factor that verifies the token, a passwordless sign-in, and every refused answer as a 400
problem whose `type` names the kind."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from apps.accounts.models import UserToken
from apps.accounts.tokens import issue_user_token
from apps.twofactor.models import Passkey, PasskeyChallenge, SecurityEvent
from tests.problems import assert_problem

from .authenticator import SoftAuthenticator, b64url, from_b64url
from .conftest import PASSWORD, bearer, make_device, make_person

pytestmark = pytest.mark.django_db

API = "/api/v1/passkeys"


def post(client, path, body=None, token=None):
    headers = bearer(token) if token else {}
    return client.post(path, body or {}, content_type="application/json", headers=headers)


def new_token(user, *, verified: bool = False) -> str:
    issued = issue_user_token(user=user)
    if verified:
        UserToken.objects.filter(pk=issued.token.pk).update(verified_at=timezone.now())
    return issued.key


def register(client, token, authenticator, *, name="Phone") -> Passkey:
    options = post(client, f"{API}/register/options", token=token).json()
    answer = {**authenticator.create(options), "name": name}
    response = post(client, f"{API}/register", answer, token)
    assert response.status_code == 201, response.content
    return Passkey.objects.get(pk=response.json()["id"])


def second_factor_options(client, token) -> dict:
    response = post(client, f"{API}/authenticate/options", token=token)
    assert response.status_code == 200, response.content
    return response.json()


def passwordless_options(client) -> dict:
    response = post(client, f"{API}/authenticate/options")
    assert response.status_code == 200, response.content
    return response.json()


def is_verified(token: str) -> bool:
    return UserToken.objects.filter(key_prefix=token[:8], verified_at__isnull=False).exists()


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


@pytest.fixture
def passkey(client, person, authenticator) -> Passkey:
    """The person's passkey, registered over the API with user verification."""
    return register(client, new_token(person), authenticator)


# --- Registration -----------------------------------------------------------------------------


def test_registration_options_are_for_this_site_with_a_random_challenge(client, person, settings):
    token = new_token(person)
    first = post(client, f"{API}/register/options", token=token).json()
    second = post(client, f"{API}/register/options", token=token).json()
    assert first["rp"] == {"id": settings.WEBAUTHN_RP_ID, "name": settings.WEBAUTHN_RP_NAME}
    assert first["user"]["name"] == "alice"
    assert first["attestation"] == "none"
    assert len(from_b64url(first["challenge"])) >= 16
    assert first["challenge"] != second["challenge"]
    assert first["timeout"] == settings.WEBAUTHN_CHALLENGE_SECONDS * 1000
    # One user handle per account (never the user id), so authenticators keep one passkey each.
    assert first["user"]["id"] == second["user"]["id"]
    assert from_b64url(first["user"]["id"]) != str(person.pk).encode()


def test_registering_a_passkey_makes_it_a_second_factor_and_verifies_the_token(
    client, person, authenticator
):
    token = new_token(person)
    options = post(client, f"{API}/register/options", token=token).json()
    answer = {**authenticator.create(options), "name": "Mac"}
    response = post(client, f"{API}/register", answer, token)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Mac"
    assert body["passwordless"] is True
    assert set(body) == {"id", "name", "passwordless", "created_at", "last_used_at"}
    stored = Passkey.objects.get(user=person)
    assert bytes(stored.credential_id) == authenticator.credential_id
    assert is_verified(token)
    # A new password login now needs the second factor.
    login = post(client, "/api/v1/auth/token", {"username": "alice", "password": PASSWORD})
    assert login.json()["enrolled"] is True
    assert login.json()["second_factor_required"] is True


def test_a_second_passkey_needs_a_verified_token(client, passkey):
    token = new_token(passkey.user)
    assert_problem(post(client, f"{API}/register/options", token=token), 403)
    assert_problem(post(client, f"{API}/register", {}, token=token), 403)
    assert_problem(client.get(API, headers=bearer(token)), 403)


def test_registration_without_a_token_is_401(client, db):
    response = post(client, f"{API}/register/options")
    assert_problem(response, 401)
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_registration_answered_twice_is_refused(client, person, authenticator):
    token = new_token(person)
    options = post(client, f"{API}/register/options", token=token).json()
    answer = authenticator.create(options)
    assert post(client, f"{API}/register", answer, token).status_code == 201
    # django-mfa2's CVE-2022-42731: the same challenge must not register another authenticator.
    other = SoftAuthenticator().create(options)
    assert_problem(post(client, f"{API}/register", other, token), 400, "passkey-challenge-used")
    assert Passkey.objects.filter(user=person).count() == 1


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"origin": "https://evil.example"}, "passkey-wrong-origin"),
        ({"rp_id": "evil.example"}, "passkey-wrong-rp-id"),
    ],
)
def test_a_registration_for_another_site_is_refused(client, person, authenticator, answer, kind):
    token = new_token(person)
    options = post(client, f"{API}/register/options", token=token).json()
    response = post(client, f"{API}/register", authenticator.create(options, **answer), token)
    assert_problem(response, 400, kind)
    assert not Passkey.objects.exists()
    assert not is_verified(token)


def test_an_expired_registration_challenge_is_refused(client, person, authenticator, settings):
    settings.TWO_FACTOR_REAUTH_SECONDS = 2 * settings.WEBAUTHN_CHALLENGE_SECONDS  # still open
    token = new_token(person)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        options = post(client, f"{API}/register/options", token=token).json()
        traveller.shift(timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS + 1))
        response = post(client, f"{API}/register", authenticator.create(options), token)
    assert_problem(response, 400, "passkey-challenge-expired")
    assert not Passkey.objects.exists()


def test_a_registration_challenge_belongs_to_the_token_that_asked(client, person, authenticator):
    options = post(client, f"{API}/register/options", token=new_token(person)).json()
    other_token = new_token(person)
    response = post(client, f"{API}/register", authenticator.create(options), other_token)
    assert_problem(response, 400, "passkey-challenge-unknown")
    assert not Passkey.objects.exists()


def test_the_same_passkey_cannot_be_registered_twice(client, passkey, authenticator):
    token = new_token(passkey.user, verified=True)
    options = post(client, f"{API}/register/options", token=token).json()
    assert options["excludeCredentials"][0]["id"] == authenticator.id
    response = post(client, f"{API}/register", authenticator.create(options), token)
    assert_problem(response, 400, "passkey-already-registered")
    assert Passkey.objects.count() == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {}},
        {"id": "x", "rawId": "x", "type": "public-key", "response": {"clientDataJSON": 1}},
    ],
)
def test_a_malformed_registration_is_400_with_errors(client, person, body):
    token = new_token(person)
    body = assert_problem(post(client, f"{API}/register", body, token), 400)
    assert body["errors"]
    assert not Passkey.objects.exists()


def test_garbage_in_the_right_shape_is_refused_as_invalid(client, person):
    token = new_token(person)
    post(client, f"{API}/register/options", token=token)
    answer = {
        "id": "AAAA",
        "rawId": "AAAA",
        "type": "public-key",
        "response": {"clientDataJSON": "bm90IGpzb24", "attestationObject": "AAAA"},
    }
    assert_problem(post(client, f"{API}/register", answer, token), 400, "passkey-invalid")


# --- A second factor for a token --------------------------------------------------------------


def test_a_passkey_verifies_the_token_as_a_code_does(client, passkey, authenticator):
    token = new_token(passkey.user)
    options = second_factor_options(client, token)
    assert [c["id"] for c in options["allowCredentials"]] == [authenticator.id]

    response = post(client, f"{API}/authenticate", authenticator.get(options), token)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": True}
    assert is_verified(token)
    passkey.refresh_from_db()
    assert passkey.sign_count == authenticator.counter
    assert passkey.last_used_at is not None
    # The verified token now opens what needs two factors.
    assert client.get("/api/v1/otp/devices", headers=bearer(token)).status_code == 200
    assert client.get(API, headers=bearer(token)).status_code == 200


def test_a_replayed_assertion_is_refused(client, passkey, authenticator):
    first_token = new_token(passkey.user)
    answer = authenticator.get(second_factor_options(client, first_token))
    assert post(client, f"{API}/authenticate", answer, first_token).status_code == 200

    replayed = post(client, f"{API}/authenticate", answer, first_token)

    assert_problem(replayed, 400, "passkey-challenge-used")


def test_a_reused_challenge_is_refused(client, passkey, authenticator):
    token = new_token(passkey.user)
    options = second_factor_options(client, token)
    first, second = authenticator.get(options), authenticator.get(options)  # counters 1 and 2
    assert post(client, f"{API}/authenticate", first, token).status_code == 200
    other_token = new_token(passkey.user)

    response = post(client, f"{API}/authenticate", second, token)

    assert_problem(response, 400, "passkey-challenge-used")
    assert not is_verified(other_token)


def test_an_expired_challenge_is_refused(client, passkey, authenticator, settings):
    token = new_token(passkey.user)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        options = second_factor_options(client, token)
        traveller.shift(timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS + 1))
        response = post(client, f"{API}/authenticate", authenticator.get(options), token)
    assert_problem(response, 400, "passkey-challenge-expired")
    assert not is_verified(token)


def test_a_challenge_answered_just_in_time_is_accepted(client, passkey, authenticator, settings):
    token = new_token(passkey.user)
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        options = second_factor_options(client, token)
        traveller.shift(timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS - 1))
        response = post(client, f"{API}/authenticate", authenticator.get(options), token)
    assert response.status_code == 200, response.content


def test_an_assertion_from_another_origin_is_refused(client, passkey, authenticator):
    token = new_token(passkey.user)
    answer = authenticator.get(second_factor_options(client, token), origin="https://evil.example")
    assert_problem(post(client, f"{API}/authenticate", answer, token), 400, "passkey-wrong-origin")
    assert not is_verified(token)


def test_an_assertion_for_another_rp_id_is_refused(client, passkey, authenticator):
    token = new_token(passkey.user)
    answer = authenticator.get(second_factor_options(client, token), rp_id="evil.example")
    assert_problem(post(client, f"{API}/authenticate", answer, token), 400, "passkey-wrong-rp-id")
    assert not is_verified(token)


def test_a_lower_sign_counter_is_refused_and_logged_as_a_possible_clone(
    client, passkey, authenticator, log_lines, settings
):
    settings.OTP_THROTTLE_FACTOR = 0
    token = new_token(passkey.user)
    answer = authenticator.get(second_factor_options(client, token), counter=5)
    assert post(client, f"{API}/authenticate", answer, token).status_code == 200
    token = new_token(passkey.user)

    cloned = authenticator.get(second_factor_options(client, token), counter=3)
    response = post(client, f"{API}/authenticate", cloned, token)

    assert_problem(response, 400, "passkey-sign-count")
    assert not is_verified(token)
    passkey.refresh_from_db()
    assert passkey.sign_count == 5
    warnings = log_lines(level="WARNING", passkey_id=passkey.pk)
    assert [line["message"] for line in warnings] == ["Passkey event: passkey_clone_suspected"]
    assert SecurityEvent.objects.filter(user=passkey.user, kind="passkey_clone_suspected").exists()
    everything = json.dumps(log_lines())
    public_key = bytes(passkey.public_key)
    for secret in (authenticator.id, b64url(public_key), public_key.hex()):
        assert secret not in everything


def test_an_equal_sign_counter_is_refused(client, passkey, authenticator):
    token = new_token(passkey.user)
    answer = authenticator.get(second_factor_options(client, token), counter=7)
    assert post(client, f"{API}/authenticate", answer, token).status_code == 200
    token = new_token(passkey.user)
    again = authenticator.get(second_factor_options(client, token), counter=7)
    assert_problem(post(client, f"{API}/authenticate", again, token), 400, "passkey-sign-count")


def test_an_authenticator_without_a_counter_is_accepted_every_time(client, person):
    authenticator = SoftAuthenticator(keeps_counter=False)
    passkey = register(client, new_token(person), authenticator)
    for _ in range(2):
        token = new_token(person)
        answer = authenticator.get(second_factor_options(client, token))
        assert post(client, f"{API}/authenticate", answer, token).status_code == 200
    passkey.refresh_from_db()
    assert passkey.sign_count == 0


def test_a_challenge_belongs_to_the_token_that_asked(client, passkey, authenticator):
    options = second_factor_options(client, new_token(passkey.user))
    other = new_token(passkey.user)
    response = post(client, f"{API}/authenticate", authenticator.get(options), other)
    assert_problem(response, 400, "passkey-challenge-unknown")
    assert not is_verified(other)


def test_someone_elses_passkey_is_not_a_second_factor(client, passkey, authenticator):
    bob = make_person("bob")
    register(client, new_token(bob), SoftAuthenticator())
    token = new_token(bob)
    answer = authenticator.get(second_factor_options(client, token))  # alice's passkey
    assert_problem(post(client, f"{API}/authenticate", answer, token), 400, "passkey-unknown")
    assert not is_verified(token)


def test_failed_assertions_are_throttled_like_wrong_codes(client, passkey, authenticator):
    token = new_token(passkey.user)
    wrong = authenticator.get(second_factor_options(client, token), origin="https://evil.example")
    assert_problem(post(client, f"{API}/authenticate", wrong, token), 400, "passkey-wrong-origin")

    right = authenticator.get(second_factor_options(client, token))
    response = post(client, f"{API}/authenticate", right, token)

    assert_problem(response, 429)
    assert int(response["Retry-After"]) >= 1
    assert not is_verified(token)
    passkey.refresh_from_db()
    assert passkey.throttling_failure_count == 1


def test_a_right_assertion_resets_the_failures(client, passkey, authenticator, settings):
    settings.OTP_THROTTLE_FACTOR = 0
    token = new_token(passkey.user)
    wrong = authenticator.get(second_factor_options(client, token), rp_id="evil.example")
    post(client, f"{API}/authenticate", wrong, token)
    right = authenticator.get(second_factor_options(client, token))
    assert post(client, f"{API}/authenticate", right, token).status_code == 200
    passkey.refresh_from_db()
    assert passkey.throttling_failure_count == 0


# --- Passwordless sign-in ---------------------------------------------------------------------


def test_a_passkey_signs_in_without_a_password(client, passkey, authenticator):
    options = passwordless_options(client)
    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"

    response = post(client, f"{API}/authenticate", authenticator.get(options))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["second_factor_required"] is False
    assert is_verified(body["token"])
    assert UserToken.objects.get(key_prefix=body["token"][:8]).user == passkey.user
    assert client.get(API, headers=bearer(body["token"])).status_code == 200


def test_a_passwordless_sign_in_is_answered_once(client, passkey, authenticator):
    answer = authenticator.get(passwordless_options(client))
    assert post(client, f"{API}/authenticate", answer).status_code == 201
    assert_problem(post(client, f"{API}/authenticate", answer), 400, "passkey-challenge-used")
    assert UserToken.objects.filter(user=passkey.user).count() == 2  # registration's, sign-in's


def test_a_passkey_registered_without_user_verification_is_only_a_second_factor(
    client, person, settings
):
    settings.OTP_THROTTLE_FACTOR = 0  # the refusal counts as a failure
    authenticator = SoftAuthenticator(user_verification=False)
    passkey = register(client, new_token(person), authenticator)
    assert passkey.passwordless is False

    answer = authenticator.get(passwordless_options(client), user_verified=True)
    response = post(client, f"{API}/authenticate", answer)
    assert_problem(response, 400, "passkey-user-verification-required")
    assert UserToken.objects.filter(user=person).count() == 1

    token = new_token(person)
    answer = authenticator.get(second_factor_options(client, token))
    assert post(client, f"{API}/authenticate", answer, token).status_code == 200


def test_passwordless_sign_in_needs_user_verification_now(client, passkey, authenticator):
    answer = authenticator.get(passwordless_options(client), user_verified=False)
    response = post(client, f"{API}/authenticate", answer)
    assert_problem(response, 400, "passkey-user-verification-required")
    assert UserToken.objects.filter(user=passkey.user).count() == 1


def test_a_second_factor_challenge_cannot_sign_in_without_the_token(client, passkey, authenticator):
    options = second_factor_options(client, new_token(passkey.user))
    response = post(client, f"{API}/authenticate", authenticator.get(options))
    assert_problem(response, 400, "passkey-challenge-unknown")


def test_an_inactive_person_cannot_sign_in_with_a_passkey(client, passkey, authenticator):
    passkey.user.is_active = False
    passkey.user.save()
    answer = authenticator.get(passwordless_options(client))
    assert_problem(post(client, f"{API}/authenticate", answer), 400, "passkey-unknown")


def test_an_unknown_passkey_cannot_sign_in(client, db):
    stranger = SoftAuthenticator()
    stranger.user_handle = b"x" * 32
    answer = stranger.get(passwordless_options(client))
    assert_problem(post(client, f"{API}/authenticate", answer), 400, "passkey-unknown")


def test_passkeys_work_while_redis_is_down(client, passkey, authenticator, redis_down):
    """Challenges live in the database: a dead cache neither loses nor forgets one."""
    answer = authenticator.get(passwordless_options(client))
    assert post(client, f"{API}/authenticate", answer).status_code == 201
    assert_problem(post(client, f"{API}/authenticate", answer), 400, "passkey-challenge-used")


def test_challenges_are_stored_only_as_a_digest(client, passkey):
    options = passwordless_options(client)
    challenge = from_b64url(options["challenge"])
    stored = PasskeyChallenge.objects.latest("created_at")
    assert stored.digest not in (options["challenge"], challenge.hex())


# --- Listing and removing ---------------------------------------------------------------------


def test_the_list_shows_names_and_dates_never_keys(client, passkey, authenticator):
    token = new_token(passkey.user, verified=True)
    response = client.get(API, headers=bearer(token))
    assert response.status_code == 200
    (listed,) = response.json()
    assert listed["id"] == passkey.pk
    assert listed["name"] == "Phone"
    assert authenticator.id not in response.content.decode()


def test_a_removed_passkey_no_longer_works(client, passkey, authenticator):
    token = new_token(passkey.user, verified=True)
    response = client.delete(f"{API}/{passkey.pk}", headers=bearer(token))
    assert response.status_code == 204
    assert not Passkey.objects.exists()

    answer = authenticator.get(passwordless_options(client))
    assert_problem(post(client, f"{API}/authenticate", answer), 400, "passkey-unknown")


def test_removing_needs_a_verified_token(client, passkey):
    token = new_token(passkey.user)
    assert_problem(client.delete(f"{API}/{passkey.pk}", headers=bearer(token)), 403)
    assert Passkey.objects.filter(pk=passkey.pk).exists()


def test_someone_elses_passkey_cannot_be_removed(client, passkey):
    bob = make_person("bob")
    make_device(bob)
    token = new_token(bob, verified=True)
    assert_problem(client.delete(f"{API}/{passkey.pk}", headers=bearer(token)), 404)
    assert Passkey.objects.filter(pk=passkey.pk).exists()
