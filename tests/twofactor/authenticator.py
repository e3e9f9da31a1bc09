"""A passkey authenticator in software, answering as a phone or a security key would.

Built from fido2's WebAuthn data structures (authenticator data, attestation object, client data)
and an ECDSA P-256 key from `cryptography`: an implementation independent of py_webauthn, which
the server verifies with. Its knobs make the answers the tests need: another origin or RP ID, no
user verification, a counter that goes back.
"""

from __future__ import annotations

import hashlib
import os
from base64 import urlsafe_b64decode, urlsafe_b64encode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256
from fido2.webauthn import (
    Aaguid,
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

ORIGIN = "http://localhost:8000"  # one of the local WEBAUTHN_ORIGINS defaults
FLAG = AuthenticatorData.FLAG


def b64url(data: bytes) -> str:
    return urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftAuthenticator:
    """One credential on one authenticator. `user_verification`: whether it verifies the person
    (PIN, biometrics); `keeps_counter`: whether its signature counter goes up on each use."""

    def __init__(
        self, *, origin: str = ORIGIN, user_verification: bool = True, keeps_counter: bool = True
    ):
        self.origin = origin
        self.user_verification = user_verification
        self.keeps_counter = keeps_counter
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.counter = 0
        self.user_handle: bytes | None = None

    @property
    def id(self) -> str:
        return b64url(self.credential_id)

    def _flags(self, *extra: FLAG) -> FLAG:
        flags = FLAG.UP
        if self.user_verification:
            flags |= FLAG.UV
        for flag in extra:
            flags |= flag
        return flags

    def create(self, options: dict, *, origin: str | None = None, rp_id: str | None = None) -> dict:
        """The `RegistrationResponseJSON` for `PublicKeyCredentialCreationOptionsJSON`."""
        rp_id = rp_id or options["rp"]["id"]
        client_data = CollectedClientData.create(
            type="webauthn.create", challenge=options["challenge"], origin=origin or self.origin
        )
        public_key = ES256.from_cryptography_key(self.key.public_key())
        credential = AttestedCredentialData.create(Aaguid.NONE, self.credential_id, public_key)
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), self._flags(FLAG.AT), self.counter, credential
        )
        attestation = AttestationObject.create("none", auth_data, {})
        self.user_handle = from_b64url(options["user"]["id"])
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: dict,
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        counter: int | None = None,
        user_verified: bool | None = None,
    ) -> dict:
        """The `AuthenticationResponseJSON` for `PublicKeyCredentialRequestOptionsJSON`, signed;
        `counter` overrides the one the authenticator keeps."""
        if counter is None:
            if self.keeps_counter:
                self.counter += 1
            counter = self.counter
        rp_id = rp_id or options["rpId"]
        flags = FLAG.UP
        if self.user_verification if user_verified is None else user_verified:
            flags |= FLAG.UV
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp_id.encode()).digest(), flags, counter
        )
        client_data = CollectedClientData.create(
            type="webauthn.get", challenge=options["challenge"], origin=origin or self.origin
        )
        signature = self.key.sign(auth_data + client_data.hash, ec.ECDSA(hashes.SHA256()))
        return {
            "id": self.id,
            "rawId": self.id,
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle) if self.user_handle else None,
            },
            "clientExtensionResults": {},
        }
