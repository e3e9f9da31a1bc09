"""User tokens for the mobile API: issuing, revoking, and the DRF authentication that reads them.

The authentication applies only to the views that list it in `authentication_classes`; API
clients send `Authorization: Bearer …` too, and have their own class.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apps.twofactor import events

from .credentials import BEARER_CHALLENGE, bearer_credential, secret_digest
from .models import User, UserToken

KEY_BYTES = 32  # 256 bits: guessing is hopeless, so one SHA-256 digest is a safe hash
# The name of user tokens' security scheme in the OpenAPI schema (apps/accounts/schema.py).
USER_TOKEN_SCHEME = "userToken"  # noqa: S105 (a name in the schema, not a secret)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `key` is shown once to the client and never stored."""

    key: str
    token: UserToken


def issue_user_token(
    *,
    user: User,
    now: datetime | None = None,
    request: HttpRequest | None = None,
    method: str = "password",
) -> IssuedToken:
    """A new token for `user`, valid for USER_TOKEN_LIFETIME seconds, recorded (`token_issued`,
    with the `method` the person logged in with).

    It is issued for the password just entered, so its re-authentication window starts now. The
    person's expired tokens are deleted on the way, so they do not pile up.
    """
    now = now or timezone.now()
    UserToken.objects.filter(user=user, expires_at__lte=now).delete()
    key = secrets.token_urlsafe(KEY_BYTES)
    token = UserToken.objects.create(
        user=user,
        digest=secret_digest(key),
        key_prefix=key[:8],
        expires_at=now + timedelta(seconds=settings.USER_TOKEN_LIFETIME),
        reauthenticated_at=now,
    )
    events.record("token_issued", user=user, request=request, token_id=token.pk, method=method)
    return IssuedToken(key=key, token=token)


def revoke_user_token(*, token: UserToken, request: HttpRequest | None = None) -> None:
    """Revoke one token (the app logs out), recorded as `token_revoked`."""
    deleted, _ = UserToken.objects.filter(pk=token.pk).delete()
    if deleted:
        events.record("token_revoked", user=token.user, request=request, token_id=token.pk)


def revoke_user_tokens(*, user: User, request: HttpRequest | None = None) -> int:
    """Revoke every token of a person, e.g. when their second factor is reset; recorded once
    (`token_revoked` with the count) when there were any."""
    deleted, _ = UserToken.objects.filter(user=user).delete()
    if deleted:
        events.record("token_revoked", user=user, request=request, count=deleted)
    return deleted


class UserTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer <token>` with a user token: unknown, expired or revoked → 401.

    `find_token` is the one lookup; a view that needs more rows with the token (the TOTP verify
    view reads the person's devices in the same query) uses a subclass that overrides it.
    """

    def authenticate(self, request: Request) -> tuple[User, UserToken] | None:
        key = bearer_credential(request.META.get("HTTP_AUTHORIZATION"))
        if key is None:
            return None
        token = self.find_token(digest=secret_digest(key), now=timezone.now())
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid, or has expired.")
        return token.user, token

    def find_token(self, *, digest: str, now: datetime) -> UserToken | None:
        """The live token with this digest, its user loaded, or None."""
        return (
            UserToken.objects.select_related("user")
            .filter(digest=digest, expires_at__gt=now, user__is_active=True)
            .first()
        )

    def authenticate_header(self, request: Request) -> str:
        return BEARER_CHALLENGE
