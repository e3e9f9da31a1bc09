"""Limits on password reset requests: the form mails any address it is given, to anyone who asks.

Per client address, requests past PASSWORD_RESET_LIMIT in PASSWORD_RESET_WINDOW are refused
(429): that says nothing about any account. Per email address, mails past the limit are not sent
and the answer stays the same, so neither limit tells whether an address has an account.
Counted in the cache for every process (`WindowCounter`), per process while it is down.
"""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from apps.core.throttles import WindowCounter


def client_retry_after(address: str) -> int | None:
    """Count a reset request from `address`; the seconds it must wait when it is past the limit,
    else None."""
    if settings.PASSWORD_RESET_LIMIT <= 0 or not address:
        return None
    counted = _requests().add(address)
    return counted.retry_after if counted.count > settings.PASSWORD_RESET_LIMIT else None


def may_mail(email: str) -> bool:
    """Count a reset mail to `email`; False when it is past the limit (then none is sent)."""
    if settings.PASSWORD_RESET_LIMIT <= 0:
        return True
    return _mails().add(email.strip().lower()).count <= settings.PASSWORD_RESET_LIMIT


@functools.cache
def _requests() -> WindowCounter:
    return WindowCounter(prefix="password-reset-client", window=settings.PASSWORD_RESET_WINDOW)


@functools.cache
def _mails() -> WindowCounter:
    return WindowCounter(prefix="password-reset-mail", window=settings.PASSWORD_RESET_WINDOW)


@receiver(setting_changed)
def _forget_limits(*, setting: str, **kwargs) -> None:
    """Tests that change the window get counters that follow it."""
    if setting == "PASSWORD_RESET_WINDOW":
        _requests.cache_clear()
        _mails.cache_clear()
