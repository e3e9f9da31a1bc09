"""Re-authentication: before a factor is added or removed, or backup codes are made, the person
must have entered their password or a code within TWO_FACTOR_REAUTH_SECONDS.

A session keeps the moment as a Unix time; a user token in `reauthenticated_at`, which starts at
its issue (it was issued for the password) and is renewed by every code accepted with it.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from apps.accounts.models import User, UserToken

from . import events, services
from .verification import verify_code

SESSION_KEY = "twofactor_reauthenticated_at"


def session_is_recent(request: HttpRequest) -> bool:
    at = request.session.get(SESSION_KEY)
    return at is not None and time.time() - at <= settings.TWO_FACTOR_REAUTH_SECONDS


def token_is_recent(token: UserToken) -> bool:
    at = token.reauthenticated_at
    window = timedelta(seconds=settings.TWO_FACTOR_REAUTH_SECONDS)
    return at is not None and timezone.now() - at <= window


def mark_session(request: HttpRequest) -> None:
    """The password or a code was just entered in this session."""
    request.session[SESSION_KEY] = time.time()


def reauthenticate(
    *,
    user: User,
    password: str | None = None,
    code: str | None = None,
    request: HttpRequest | None = None,
    token: UserToken | None = None,
) -> bool:
    """Check the password or the code and, when right, open a new window for the session of
    `request` or for `token`. Password checks are throttled as logins are (LoginThrottled), codes
    as codes are (CodeRefused)."""
    if code:
        if verify_code(user=user, code=code, token=token, request=request) is None:
            return False
        how = "code"  # verify_code renewed the token's window
    else:
        try:
            services.authenticate_password(
                request=request, username=user.get_username(), password=password or ""
            )
        except services.InvalidCredentials:
            return False
        how = "password"
        if token is not None:
            now = timezone.now()
            UserToken.objects.filter(pk=token.pk).update(reauthenticated_at=now)
            token.reauthenticated_at = now
    if token is None and request is not None:
        mark_session(request)
    events.record("reauthenticated", user=user, request=request, by=how)
    return True
