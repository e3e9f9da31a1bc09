"""Reading a browser's (or an app's) WebAuthn answer, and the checks dbapi names before
py_webauthn verifies the rest: the origin and the RP ID, each refused as its own kind."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.conf import settings
from webauthn.helpers import parse_client_data_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    RegistrationCredential,
)

from .errors import PasskeyInvalid, WrongOrigin, WrongRpId

# What the library's parsers raise on a malformed answer (base64 and JSON errors included).
PARSE_ERRORS = (WebAuthnException, ValueError, TypeError, KeyError)


def parse_answer(parser, credential: dict[str, Any] | str):
    """The library's structure for the answer; a malformed one is simply invalid."""
    try:
        return parser(credential)
    except PARSE_ERRORS:
        raise PasskeyInvalid from None


def client_data(parsed: RegistrationCredential | AuthenticationCredential):
    """What the browser says it signed: the challenge (which finds the record), the origin."""
    try:
        return parse_client_data_json(parsed.response.client_data_json)
    except PARSE_ERRORS:
        raise PasskeyInvalid from None


def check_origin(origin: str) -> None:
    """A phishing page gets an answer for its own origin: refuse any but ours."""
    if origin not in settings.WEBAUTHN_ORIGINS:
        raise WrongOrigin


def check_rp_id(rp_id_hash: bytes) -> None:
    """The authenticator signs the RP ID's hash: a passkey of another site is refused."""
    if not secrets.compare_digest(
        rp_id_hash, hashlib.sha256(settings.WEBAUTHN_RP_ID.encode()).digest()
    ):
        raise WrongRpId


def descriptors(passkeys) -> list[PublicKeyCredentialDescriptor]:
    """The passkeys as options name them, so the browser offers (or excludes) only those."""
    known = {transport.value for transport in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=bytes(passkey.credential_id),
            transports=[AuthenticatorTransport(t) for t in passkey.transports if t in known]
            or None,
        )
        for passkey in passkeys
    ]
