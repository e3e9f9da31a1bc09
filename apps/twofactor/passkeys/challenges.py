"""WebAuthn challenges: random, bound to who asked, answered once, expiring.

A challenge is looked up by the SHA-256 of the bytes the authenticator signed (they come back in
`clientDataJSON`), so the answer needs no other id. Accepting one is a conditional UPDATE: of two
requests answering the same challenge exactly one wins, the other is told it was used.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.accounts.models import User, UserToken

from ..models import PasskeyChallenge
from .errors import PasskeyRefused

Purpose = PasskeyChallenge.Purpose

CHALLENGE_BYTES = 32
# Used and expired challenges are kept an hour, so a late answer is told what happened to it;
# after that it is refused as unknown.
KEEP_FOR = timedelta(hours=1)


class ChallengeRefused(PasskeyRefused):
    """The answer's challenge cannot be accepted: unknown here, used, or expired."""

    reason = "passkey-challenge-unknown"
    message = _("That passkey answer is for a challenge this server did not give you.")


class ChallengeUnknown(ChallengeRefused):
    pass


class ChallengeUsed(ChallengeRefused):
    reason = "passkey-challenge-used"
    message = _("That passkey answer was already used. Try again.")


class ChallengeExpired(ChallengeRefused):
    reason = "passkey-challenge-expired"
    message = _("That passkey request has expired. Try again.")


def session_binding(session: SessionBase) -> str:
    """What binds a challenge to a browser session (made now if the browser has none yet)."""
    if session.session_key is None:
        session.create()
    return _digest(f"session:{session.session_key}".encode())


def token_binding(token: UserToken | None) -> str:
    """What binds a challenge to a user token; empty for a caller without one."""
    return _digest(f"token:{token.digest}".encode()) if token is not None else ""


def issue_challenge(
    *,
    purpose: str,
    binding: str,
    user: User | None = None,
    user_handle: bytes | None = None,
) -> bytes:
    """A fresh random challenge, recorded for `purpose` and `binding` until it expires."""
    now = timezone.now()
    PasskeyChallenge.objects.filter(expires_at__lt=now - KEEP_FOR).delete()
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    PasskeyChallenge.objects.create(
        digest=_digest(challenge),
        purpose=purpose,
        binding=binding,
        user=user,
        user_handle=user_handle,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.WEBAUTHN_CHALLENGE_SECONDS),
    )
    return challenge


def accept_challenge(*, challenge: bytes, purpose: str, binding: str) -> PasskeyChallenge:
    """The recorded challenge, now marked used; raises ChallengeRefused when it is unknown, bound
    to another session or token, for another purpose, used already, or expired."""
    record = PasskeyChallenge.objects.filter(
        digest=_digest(challenge), purpose=purpose, binding=binding
    ).first()
    if record is None:
        raise ChallengeUnknown
    now = timezone.now()
    won = PasskeyChallenge.objects.filter(
        pk=record.pk, used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if won:
        record.used_at = now
        return record
    record.refresh_from_db(fields=["used_at"])
    raise ChallengeUsed if record.used_at is not None else ChallengeExpired


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()
