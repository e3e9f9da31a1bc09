"""Bearer credentials, as API client keys and user tokens both arrive: one way to read them from
`Authorization: Bearer <credential>`, one way to store them, one challenge to answer with."""

from __future__ import annotations

import hashlib

# The WWW-Authenticate challenge of a 401: without a credential, and with one that is unknown,
# revoked or expired (RFC 6750).
BEARER_CHALLENGE = 'Bearer realm="dbapi"'
INVALID_TOKEN_CHALLENGE = 'Bearer realm="dbapi", error="invalid_token"'  # noqa: S105 (a header)


def bearer_credential(authorization: str | None) -> str | None:
    """The credential of an `Authorization` value (HTTP header or gRPC metadata) in the Bearer
    scheme; None when there is none, or another scheme is used."""
    scheme, _, credential = (authorization or "").strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        return None
    return credential


def secret_digest(secret: str) -> str:
    """How keys and tokens are stored: their SHA-256. They are 256-bit random strings, so a fast
    hash is as safe as a slow one, and a password hasher would cost every call its slowness."""
    return hashlib.sha256(secret.encode()).hexdigest()
