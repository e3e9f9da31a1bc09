"""Registering passkeys and checking their assertions, with py_webauthn doing the verification.

What this module adds to the library's checks: which challenge is expected (the one recorded for
this session or token and purpose, accepted once), refusals named by kind (wrong origin, wrong RP
ID, a counter that went back), the rule that only a passkey registered with user verification may
sign in without a password, and django-otp's throttling for failed assertions.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from apps.accounts.models import User, UserToken

from ..models import Passkey
from ..verification import mark_token_verified
from .challenges import Purpose, accept_challenge, issue_challenge
from .errors import (
    AlreadyRegistered,
    PasskeyInvalid,
    PasskeyRefused,
    PasskeyThrottled,
    PasskeyUnknown,
    SignCountNotIncreased,
    UserVerificationRequired,
    WrongOrigin,
    WrongRpId,
)

logger = logging.getLogger(__name__)

DEFAULT_PASSKEY_NAME = "Passkey"
USER_HANDLE_SALT = "apps.twofactor.passkeys.user_handle"
_PARSE_ERRORS = (WebAuthnException, ValueError, TypeError, KeyError)


# --- Registration -----------------------------------------------------------------------------


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
        exclude_credentials=_descriptors(Passkey.objects.filter(user=user)),
    )
    return options_to_json_dict(options)


def register_passkey(
    *,
    user: User,
    binding: str,
    credential: dict[str, Any] | str,
    name: str = "",
    token: UserToken | None = None,
) -> Passkey:
    """Verify a `RegistrationResponseJSON` against the challenge given to `binding` and keep the
    passkey. Raises a PasskeyRefused (or ChallengeRefused) naming what was wrong.

    Like confirming a first authenticator, registering a passkey verifies `token`: the person
    has just shown they hold the new factor.
    """
    parsed = _parse(parse_registration_credential_json, credential)
    client_data = _client_data(parsed)
    record = accept_challenge(
        challenge=client_data.challenge, purpose=Purpose.REGISTER, binding=binding
    )
    if record.user_id != user.pk:
        raise PasskeyInvalid
    _check_origin(client_data.origin)
    try:
        rp_id_hash = parse_attestation_object(parsed.response.attestation_object).auth_data
    except _PARSE_ERRORS:
        raise PasskeyInvalid from None
    _check_rp_id(rp_id_hash.rp_id_hash)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=client_data.challenge,
            expected_rp_id=settings.WEBAUTHN_RP_ID,
            expected_origin=settings.WEBAUTHN_ORIGINS,
        )
    except _PARSE_ERRORS:
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
    record_passkey_event("passkey_added", passkey=passkey)
    return passkey


# --- Authentication ---------------------------------------------------------------------------


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
        allowed = _descriptors(Passkey.objects.filter(user=user, confirmed=True))
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
) -> Passkey:
    """The passkey that signed this `AuthenticationResponseJSON`, checked against the challenge
    given to `binding`: with `user`, as that person's second factor; without, as a passwordless
    sign-in (the person is the passkey's). Marks `token` verified when given.

    Raises PasskeyThrottled while the passkey waits after failures, and a PasskeyRefused (or
    ChallengeRefused) naming what was wrong; each refusal of a known passkey counts as a failure.
    """
    parsed = _parse(parse_authentication_credential_json, credential)
    client_data = _client_data(parsed)
    passkeys = Passkey.objects.select_related("user").filter(
        credential_id=parsed.raw_id, confirmed=True, user__is_active=True
    )
    passkey = passkeys.filter(user=user).first() if user is not None else passkeys.first()
    if passkey is not None:
        _check_not_throttled(passkey)
    try:
        purpose = Purpose.SECOND_FACTOR if user is not None else Purpose.SIGN_IN
        record = accept_challenge(challenge=client_data.challenge, purpose=purpose, binding=binding)
        if passkey is None:
            raise PasskeyUnknown
        if user is not None and record.user_id != user.pk:
            raise PasskeyInvalid
        new_count = _verify_assertion(
            parsed, passkey=passkey, challenge=client_data.challenge, passwordless=user is None
        )
        _accept(passkey, new_count=new_count, token=token)
    except PasskeyRefused:
        if passkey is not None:
            _count_failure(passkey)
        raise
    return passkey


def _verify_assertion(
    parsed: AuthenticationCredential, *, passkey: Passkey, challenge: bytes, passwordless: bool
) -> int:
    """The assertion's sign count, once its origin, RP ID, user verification (for a
    passwordless sign-in) and signature are checked."""
    _check_origin(_client_data(parsed).origin)
    try:
        auth_data = parse_authenticator_data(parsed.response.authenticator_data)
    except _PARSE_ERRORS:
        raise PasskeyInvalid from None
    _check_rp_id(auth_data.rp_id_hash)
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
    except _PARSE_ERRORS:
        raise PasskeyInvalid from None
    return verified.new_sign_count


def _accept(passkey: Passkey, *, new_count: int, token: UserToken | None) -> None:
    """Store the new counter and the use; refuse a counter that did not increase (when the
    authenticator keeps one) as a possible clone. Conditional, so two racing assertions with
    the same counter cannot both pass."""
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
        logger.warning(
            "Passkey sign counter did not increase: possibly a cloned authenticator",
            extra={"user_id": passkey.user_id, "passkey_id": passkey.pk},
        )
        record_passkey_event("passkey_clone_suspected", passkey=passkey)
        raise SignCountNotIncreased
    passkey.sign_count, passkey.last_used_at = new_count, now
    passkey.throttling_failure_count, passkey.throttling_failure_timestamp = 0, None


# --- Managing passkeys ------------------------------------------------------------------------


def rename_passkey(*, passkey: Passkey, name: str) -> Passkey:
    passkey.name = name.strip()[:64] or DEFAULT_PASSKEY_NAME
    passkey.save(update_fields=["name"])
    return passkey


def remove_passkey(*, passkey: Passkey) -> None:
    """Remove a passkey: its assertions are refused from now on. Callers check a second factor
    first."""
    passkey_id = passkey.pk
    passkey.delete()
    passkey.pk = passkey_id  # for the record
    record_passkey_event("passkey_removed", passkey=passkey)


def record_passkey_event(kind: str, *, passkey: Passkey) -> None:
    """The one place a passkey's security event is recorded (`passkey_added`, `passkey_removed`,
    `passkey_clone_suspected`): a log line until security events exist. Never the credential
    id or the public key."""
    log = logger.warning if kind == "passkey_clone_suspected" else logger.info
    log("Passkey event: %s", kind, extra={"user_id": passkey.user_id, "passkey_id": passkey.pk})


# --- Helpers ----------------------------------------------------------------------------------


def _parse(parser, credential: dict[str, Any] | str):
    try:
        return parser(credential)
    except _PARSE_ERRORS:
        raise PasskeyInvalid from None


def _client_data(parsed: RegistrationCredential | AuthenticationCredential):
    try:
        return parse_client_data_json(parsed.response.client_data_json)
    except _PARSE_ERRORS:
        raise PasskeyInvalid from None


def _check_origin(origin: str) -> None:
    if origin not in settings.WEBAUTHN_ORIGINS:
        raise WrongOrigin


def _check_rp_id(rp_id_hash: bytes) -> None:
    if not secrets.compare_digest(
        rp_id_hash, hashlib.sha256(settings.WEBAUTHN_RP_ID.encode()).digest()
    ):
        raise WrongRpId


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


def _descriptors(passkeys) -> list[PublicKeyCredentialDescriptor]:
    known = {transport.value for transport in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=bytes(passkey.credential_id),
            transports=[AuthenticatorTransport(t) for t in passkey.transports if t in known]
            or None,
        )
        for passkey in passkeys
    ]
