"""Registering a passkey: the options for the authenticator, then its answer, verified by
py_webauthn against the challenge given to this session or token."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from webauthn import generate_registration_options, verify_registration_response
from webauthn.helpers import (
    options_to_json_dict,
    parse_attestation_object,
    parse_registration_credential_json,
)
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from apps.accounts.models import User, UserToken

from ..models import Passkey
from ..verification import mark_token_verified
from .answers import PARSE_ERRORS, check_origin, check_rp_id, client_data, descriptors, parse_answer
from .challenges import Purpose, accept_challenge, issue_challenge
from .errors import AlreadyRegistered, PasskeyInvalid
from .services import DEFAULT_PASSKEY_NAME, record_passkey_event

USER_HANDLE_SALT = "apps.twofactor.passkeys.user_handle"


def registration_options(*, user: User, binding: str) -> dict[str, Any]:
    """`PublicKeyCredentialCreationOptionsJSON` for a new passkey of `user`, its challenge bound
    to `binding`. Attestation `none`: dbapi trusts no vendor list, only the key it is given."""
    user_handle = _user_handle(user)
    challenge = issue_challenge(
        purpose=Purpose.REGISTER, binding=binding, user=user, user_handle=user_handle
    )
    options = generate_registration_options(
        rp_id=settings.WEBAUTHN_RP_ID,
        rp_name=settings.WEBAUTHN_RP_NAME,
        user_id=user_handle,
        user_name=user.get_username(),
        user_display_name=user.get_full_name() or user.get_username(),
        challenge=challenge,
        timeout=settings.WEBAUTHN_CHALLENGE_SECONDS * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=descriptors(Passkey.objects.filter(user=user)),
    )
    return options_to_json_dict(options)


def register_passkey(
    *,
    user: User,
    binding: str,
    credential: dict[str, Any] | str,
    name: str = "",
    token: UserToken | None = None,
    request: HttpRequest | None = None,
) -> Passkey:
    """Verify a `RegistrationResponseJSON` against the challenge given to `binding` and keep the
    passkey. Raises a PasskeyRefused (or ChallengeRefused) naming what was wrong.

    Like confirming a first authenticator, registering a passkey verifies `token`: the person
    has just shown they hold the new factor.
    """
    parsed = parse_answer(parse_registration_credential_json, credential)
    collected = client_data(parsed)
    record = accept_challenge(
        challenge=collected.challenge, purpose=Purpose.REGISTER, binding=binding
    )
    if record.user_id != user.pk:
        raise PasskeyInvalid
    check_origin(collected.origin)
    try:
        auth_data = parse_attestation_object(parsed.response.attestation_object).auth_data
    except PARSE_ERRORS:
        raise PasskeyInvalid from None
    check_rp_id(auth_data.rp_id_hash)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=collected.challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGINS,
        )
    except PARSE_ERRORS:
        raise PasskeyInvalid from None
    try:
        with transaction.atomic():
            passkey = Passkey.objects.create(
                user=user,
                name=(name or "").strip()[:64] or DEFAULT_PASSKEY_NAME,
                confirmed=True,
                credential_id=verified.credential_id,
                public_key=verified.credential_public_key,
                sign_count=verified.sign_count,
                user_handle=bytes(record.user_handle),
                passwordless=verified.user_verified,
                transports=[str(t.value) for t in parsed.response.transports or []],
                aaguid=verified.aaguid,
            )
            if token is not None:
                mark_token_verified(token=token, now=timezone.now())
    except IntegrityError:
        raise AlreadyRegistered from None
    record_passkey_event("passkey_added", passkey=passkey, request=request)
    return passkey


def _user_handle(user: User) -> bytes:
    """The WebAuthn user handle of `user`, the same every time so an authenticator keeps one
    passkey per account: the one their passkeys carry, else one derived with SECRET_KEY (it must
    not be the user id, which authenticators may show or share)."""
    handle = (
        Passkey.objects.filter(user=user).order_by("id").values_list("user_handle", flat=True)
    ).first()
    if handle is not None:
        return bytes(handle)
    return salted_hmac(USER_HANDLE_SALT, str(user.pk), algorithm="sha256").digest()
