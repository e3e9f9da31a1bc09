"""The trusted browser's cookie: signed (Django's signing, with its own salt and the trust's
lifetime), HttpOnly, and sent only over HTTPS wherever the session cookie is."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from .services import Trust

COOKIE_NAME = "dbapi_trusted_browser"
SALT = "apps.twofactor.trusted_browsers"


def read(request: HttpRequest) -> str | None:
    """The browser's trust cookie when its signature holds and it is younger than
    TWO_FACTOR_TRUST_DAYS; None for a missing, altered or expired one."""
    return request.get_signed_cookie(
        COOKIE_NAME,
        default=None,
        salt=SALT,
        max_age=timedelta(days=settings.TWO_FACTOR_TRUST_DAYS),
    )


def remember(response: HttpResponse, trust: Trust) -> None:
    response.set_signed_cookie(
        COOKIE_NAME,
        trust.cookie,
        salt=SALT,
        max_age=timedelta(days=settings.TWO_FACTOR_TRUST_DAYS),
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )


def forget(response: HttpResponse) -> None:
    response.delete_cookie(
        COOKIE_NAME,
        path=settings.SESSION_COOKIE_PATH,
        domain=settings.SESSION_COOKIE_DOMAIN,
        samesite=settings.SESSION_COOKIE_SAMESITE,
    )
