"""Trusting a browser, honouring the trust at the next login, and revoking it.

A trust lets one browser skip the code step after the right password. It ends, whichever comes
first, when:

- TWO_FACTOR_TRUST_DAYS have passed since it was given (not since its last use: a browser that
  logs in every day still shows a code once a period);
- the person revokes it, or all of theirs, on the two-factor page;
- the password is changed or reset (`apps.twofactor.passwords`): whoever made the change may be
  taking the account back from someone who had the old password and a trusted browser;
- the second factor that vouched for it is removed (by the person, the API or staff; removing the
  last one included): the browser was trusted because it showed that factor;
- staff reset the person's second factor (a lost phone: every trust goes with the devices).

While the second factor is locked (OTP_MAX_FAILURES) no trust is honoured, so the code step says
it is locked; trusts are not revoked by the lock, which someone else's guessing can cause.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from django_otp.models import Device

from apps.accounts.credentials import secret_digest
from apps.accounts.models import User

from .. import selectors
from ..models import TrustedBrowser

SECRET_BYTES = 32  # 256 random bits: a fast digest is enough to store it, as for user tokens
USER_AGENT_MAX_LENGTH = TrustedBrowser._meta.get_field("user_agent").max_length


@dataclass(frozen=True)
class Trust:
    """A new trust: `cookie` is the value the browser keeps (signed by `cookies.py`), never
    stored; the record holds only the digest of its secret."""

    browser: TrustedBrowser
    cookie: str


def trust_browser(
    *,
    user: User,
    device: Device,
    user_agent: str,
    replacing: str | None = None,
    now: datetime | None = None,
) -> Trust:
    """Trust the browser that just showed `device` for TWO_FACTOR_TRUST_DAYS. The trust its
    cookie held (`replacing`, when it was this person's) and the person's expired trusts are
    deleted on the way, so one browser is listed once and nothing piles up."""
    now = now or timezone.now()
    TrustedBrowser.objects.filter(user=user, expires_at__lte=now).delete()
    previous = trust_digest(user=user, cookie=replacing)
    if previous is not None:
        TrustedBrowser.objects.filter(user=user, digest=previous).delete()
    secret = secrets.token_urlsafe(SECRET_BYTES)
    browser = TrustedBrowser.objects.create(
        user=user,
        digest=secret_digest(secret),
        device=device.persistent_id,
        user_agent=user_agent[:USER_AGENT_MAX_LENGTH],
        created_at=now,
        last_used_at=now,
        expires_at=now + timedelta(days=settings.TWO_FACTOR_TRUST_DAYS),
    )
    return Trust(browser=browser, cookie=f"{user.pk}:{secret}")


def vouching_device(
    *, user: User, cookie: str | None, now: datetime | None = None
) -> Device | None:
    """The device that verifies the session of `user` logging in from the browser holding
    `cookie` (its signature already checked), when that browser is trusted; None otherwise.

    The cookie must name this person, its secret a live trust of theirs, the second factor must
    not be locked, and the device that vouched for the browser must still be theirs and
    confirmed. A trust whose device is gone is deleted: it can never be honoured again.
    """
    if not settings.TWO_FACTOR_TRUST_DAYS:
        return None
    now = now or timezone.now()
    browser = _live_trust(user=user, cookie=cookie, now=now)
    if browser is None:
        return None
    lock = selectors.second_factor_lock(user=user)
    if lock is not None and lock.is_locked:
        return None
    device = Device.from_persistent_id(browser.device)
    if device is None or device.user_id != user.pk or not device.confirmed:
        browser.delete()
        return None
    TrustedBrowser.objects.filter(pk=browser.pk).update(last_used_at=now)
    return device


def revoke_trusted_browser(*, user: User, browser_id: int) -> TrustedBrowser | None:
    """Revoke one of the person's trusted browsers; the one revoked, or None when they have no
    such browser (anyone else's included)."""
    browser = TrustedBrowser.objects.filter(user=user, pk=browser_id).first()
    if browser is not None:
        browser.delete()
    return browser


def revoke_trusted_browsers(*, user: User) -> int:
    """Revoke every browser the person trusted; how many there were."""
    deleted, _ = TrustedBrowser.objects.filter(user=user).delete()
    return deleted


def trusted_browsers(*, user: User, now: datetime | None = None) -> QuerySet[TrustedBrowser]:
    """The person's live trusted browsers, the most recently used first."""
    return TrustedBrowser.objects.filter(user=user, expires_at__gt=now or timezone.now())


def trust_digest(*, user: User, cookie: str | None) -> str | None:
    """The digest of the trust `cookie` points at when it names `user`: how a page tells which
    of the listed browsers is the one it is shown in."""
    user_id, _, secret = (cookie or "").partition(":")
    if user_id != str(user.pk) or not secret:
        return None
    return secret_digest(secret)


def _live_trust(*, user: User, cookie: str | None, now: datetime) -> TrustedBrowser | None:
    digest = trust_digest(user=user, cookie=cookie)
    if digest is None:
        return None
    return trusted_browsers(user=user, now=now).filter(digest=digest).first()
