"""Checking a passkey's assertion: a second factor for a known person, or a passwordless
sign-in. py_webauthn verifies the signature; this module picks the challenge, applies the
user-verification rule, compares the sign counter and throttles failures as django-otp does."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_authenticator_data,
)
from webauthn.helpers.structs import AuthenticationCredential, UserVerificationRequirement

from apps.accounts.models import User, UserToken

from .. import events, selectors
from ..models import Passkey
from ..verification import SecondFactorLocked, mark_token_verified
from .answers import PARSE_ERRORS, check_origin, check_rp_id, client_data, descriptors, parse_answer
from .challenges import Purpose, accept_challenge, issue_challenge
from .errors import (
    PasskeyInvalid,
    PasskeyRefused,
    PasskeyThrottled,
    PasskeyUnknown,
    SignCountNotIncreased,
    UserVerificationRequired,
)
from .services import record_passkey_event


def authentication_options(*, binding: str, user: User | None = None) -> dict[str, Any]:
    """`PublicKeyCredentialRequestOptionsJSON`, its challenge bound to `binding`.

    With `user`: a second factor after the password (or a "confirm it's you"), among that
    person's passkeys. Without: a passwordless sign-in with any discoverable passkey, which
    must verify the person (PIN, biometrics).
    """
    if user is None:
        challenge = issue_challenge(purpose=Purpose.SIGN_IN, binding=binding)
        allowed, verification = [], UserVerificationRequirement.REQUIRED
    else:
        challenge = issue_challenge(purpose=Purpose.SECOND_FACTOR, binding=binding, user=user)
        allowed = descriptors(Passkey.objects.filter(user=user, confirmed=True))
        verification = UserVerificationRequirement.PREFERRED
    options = generate_authentication_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        challenge=challenge,
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
        allow_credentials=allowed,
        user_verification=verification,
    )
    return options_to_json_dict(options)


def authenticate_passkey(
    *,
    credential: dict[str, Any] | str,
    binding: str,
    user: User | None = None,
    token: UserToken | None = None,
    request: HttpRequest | None = None,
) -> Passkey:
    """The passkey that signed this `AuthenticationResponseJSON`, checked against the challenge
    given to `binding`: with `user`, as that person's second factor; without, as a passwordless
    sign-in (the person is the passkey's). Marks `token` verified when given.

    Raises SecondFactorLocked, before anything is checked or counted, while `user`'s second
    factor is locked (OTP_MAX_FAILURES), as for codes: a passkey is a second factor like them.
    Raises PasskeyThrottled while the passkey waits after failures, and a PasskeyRefused (or
    ChallengeRefused) naming what was wrong; each refusal of a known passkey counts as a failure,
    and is recorded for its owner (`otp_failed`, or `login_failed` for a passwordless sign-in;
    `otp_throttled` while it waits; `passkey_clone_suspected` for a counter that went back), in
    `request` when given.
    """
    if user is not None and selectors.second_factor_is_locked(user=user):
        raise SecondFactorLocked
    parsed = parse_answer(parse_authentication_credential_json, credential)
    collected = client_data(parsed)
    passkeys = Passkey.objects.select_related("user").filter(
        credential_id=parsed.raw_id, confirmed=True, user__is_active=True
    )
    passkey = passkeys.filter(user=user).first() if user is not None else passkeys.first()
    if passkey is not None:
        try:
            _check_not_throttled(passkey)
        except PasskeyThrottled as exc:
            events.record(
                "otp_throttled", user=passkey.user, request=request, retry_after=exc.retry_after
            )
            raise
    try:
        purpose = Purpose.SECOND_FACTOR if user is not None else Purpose.SIGN_IN
        record = accept_challenge(challenge=collected.challenge, purpose=purpose, binding=binding)
        if passkey is None:
            raise PasskeyUnknown
        if user is not None and record.user_id != user.pk:
            raise PasskeyInvalid
        new_count = _verify_assertion(
            parsed, passkey=passkey, challenge=collected.challenge, passwordless=user is None
        )
        _accept(passkey, new_count=new_count, token=token, request=request)
    except PasskeyRefused as exc:
        if passkey is not None:
            _count_failure(passkey)
            _record_failure(passkey, passwordless=user is None, reason=exc.reason, request=request)
        raise
    return passkey


def _verify_assertion(
    parsed: AuthenticationCredential, *, passkey: Passkey, challenge: bytes, passwordless: bool
) -> int:
    """The assertion's sign count, once its origin, RP ID, user verification (for a
    passwordless sign-in) and signature are checked."""
    check_origin(client_data(parsed).origin)
    try:
        auth_data = parse_authenticator_data(parsed.response.authenticator_data)
    except PARSE_ERRORS:
        raise PasskeyInvalid from None
    check_rp_id(auth_data.rp_id_hash)
    if passwordless:
        # django-allauth#4224: a passkey registered without user verification stays a second
        # factor, whatever a later assertion claims.
        if not (passkey.passwordless and auth_data.flags.uv):
            raise UserVerificationRequired
        handle = parsed.response.user_handle
        if handle is not None and handle != bytes(passkey.user_handle):
            raise PasskeyInvalid
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGINS,
            credential_public_key=bytes(passkey.public_key),
            # The counter is compared below, after the signature, in one conditional UPDATE:
            # only a genuinely signed assertion can raise a clone suspicion.
            credential_current_sign_count=0,
            require_user_verification=passwordless,
        )
    except PARSE_ERRORS:
        raise PasskeyInvalid from None
    return verified.new_sign_count


def _accept(
    passkey: Passkey, *, new_count: int, token: UserToken | None, request: HttpRequest | None
) -> None:
    """Store the new counter and the use; refuse a counter that did not increase (when the
    authenticator keeps one) as a possible clone, recorded for the passkey's owner.
    Conditional, so two racing assertions with the same counter cannot both pass."""
    now = timezone.now()
    # An authenticator without a counter always reports 0; one with a counter must go up.
    counter_rises = Q(sign_count__lt=new_count) if new_count else Q(sign_count=0)
    with transaction.atomic():
        accepted = Passkey.objects.filter(counter_rises, pk=passkey.pk).update(
            sign_count=new_count,
            last_used_at=now,
            throttling_failure_count=0,
            throttling_failure_timestamp=None,
        )
        if accepted and token is not None:
            mark_token_verified(token=token, now=now)
    if not accepted:
        record_passkey_event(
            "passkey_clone_suspected",
            passkey=passkey,
            request=request,
            sign_count=new_count,
            stored_sign_count=passkey.sign_count,
        )
        raise SignCountNotIncreased
    passkey.sign_count, passkey.last_used_at = new_count, now
    passkey.throttling_failure_count, passkey.throttling_failure_timestamp = 0, None


def _record_failure(
    passkey: Passkey, *, passwordless: bool, reason: str, request: HttpRequest | None
) -> None:
    """A refused assertion of a known passkey, for its owner: a failed sign-in without a
    password, a failed second factor otherwise."""
    if passwordless:
        events.record(
            "login_failed", user=passkey.user, request=request, method="passkey", reason=reason
        )
    else:
        events.record(
            "otp_failed", user=passkey.user, request=request, code_kind="passkey", reason=reason
        )


def _check_not_throttled(passkey: Passkey) -> None:
    allowed, info = passkey.verify_is_allowed()
    if not allowed:
        wait = (info["locked_until"] - timezone.now()).total_seconds()
        raise PasskeyThrottled(max(1, math.ceil(wait)))


def _count_failure(passkey: Passkey) -> None:
    """One more failure, counted in the database (django-otp's throttling fields)."""
    Passkey.objects.filter(pk=passkey.pk).update(
        throttling_failure_count=F("throttling_failure_count") + 1,
        throttling_failure_timestamp=timezone.now(),
    )
