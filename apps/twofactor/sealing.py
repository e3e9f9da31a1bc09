"""Second-factor secrets sealed at rest, and backup codes kept only as keyed hashes.

TOTP keys must be read back to compute codes, so they are encrypted (Fernet: AES-128-CBC and an
HMAC-SHA256, from `cryptography`) with the keys in OTP_ENCRYPTION_KEYS: the first seals, every one
unseals (MultiFernet), which is what lets `rotate_otp_keys` move secrets to a new key while both
are listed. A database dump then holds no secret without the keys, which live in the environment.

Backup codes are only ever compared, so they are stored as an HMAC-SHA256 keyed by SECRET_KEY
(Django's `salted_hmac`, under this module's salt); the person's id is hashed in, so the same code
of two people gives two digests. SECRET_KEY_FALLBACKS are tried too, as Django does for its own
signatures, so rotating SECRET_KEY the documented way keeps codes working.
"""

from __future__ import annotations

import secrets
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac

TOTP_KEY_BYTES = 20  # 160 bits, as RFC 4226 recommends and django-otp generates
BACKUP_CODE_SALT = "dbapi.twofactor.backup-code"


@cache
def _fernets(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    """The MultiFernet of `keys` and the Fernet of the first; built once per set of keys."""
    fernets = [Fernet(key) for key in keys]
    return MultiFernet(fernets), fernets[0]


def _current() -> tuple[MultiFernet, Fernet]:
    return _fernets(tuple(settings.OTP_ENCRYPTION_KEYS))


def seal(secret: bytes) -> str:
    """`secret` encrypted with the first key, as text for a database column."""
    return _current()[0].encrypt(secret).decode("ascii")


def unseal(sealed: str) -> bytes:
    """The secret in `sealed`, with whichever listed key sealed it; InvalidToken when none did."""
    return _current()[0].decrypt(sealed.encode("ascii"))


def new_sealed_totp_key() -> str:
    """A fresh random TOTP key, sealed: the default of a new device's key."""
    return seal(secrets.token_bytes(TOTP_KEY_BYTES))


def sealed_with_first_key(sealed: str) -> bool:
    """Whether `sealed` is already under the first key (rotation can skip it)."""
    try:
        _current()[1].decrypt(sealed.encode("ascii"))
    except InvalidToken:
        return False
    return True


def reseal(sealed: str) -> str:
    """`sealed` encrypted again with the first key (its secret unchanged)."""
    return _current()[0].rotate(sealed.encode("ascii")).decode("ascii")


def backup_code_digest(*, user_id: int, code: str, secret: str | None = None) -> str:
    """The stored form of a backup code: hex HMAC-SHA256 of the person's id and the code."""
    return salted_hmac(
        BACKUP_CODE_SALT, f"{user_id}:{code}", secret=secret, algorithm="sha256"
    ).hexdigest()


def backup_code_digests(*, user_id: int, code: str) -> list[str]:
    """Every digest the code may be stored under: with SECRET_KEY, then each fallback."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [backup_code_digest(user_id=user_id, code=code, secret=key) for key in keys]
