"""Writes: password checks with throttling, enrolling and removing authenticators, backup codes,
and what staff do about a person's second factor.

Checking codes lives in `verification.py`; these functions call it where a code is asked for.
Every change to a person's factors is recorded (`events.record`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest
from django_otp import device_classes, devices_for_user
from django_otp.models import Device

from apps.accounts.models import User, UserToken
from apps.accounts.tokens import revoke_user_tokens
from apps.core.cache import cache_or

from . import events, selectors
from .models import BackupCode, BackupCodeDevice, SealedTOTPDevice, SecondFactorLock
from .sealing import backup_code_digest
from .verification import normalize_code, verify_totp

logger = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
DEFAULT_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


class InvalidCredentials(Exception):
    """The username and password do not match an active account."""


class LoginThrottled(Exception):
    """Too many wrong passwords for this username: no password is checked for a while."""

    def __init__(self, retry_after: int):
        super().__init__(f"login throttled for {retry_after} s")
        self.retry_after = retry_after


# --- Passwords ------------------------------------------------------------------------------------


def authenticate_password(*, request: HttpRequest | None, username: str, password: str) -> User:
    """The active person with this username and password.

    After LOGIN_FAILURE_LIMIT wrong passwords for one username within LOGIN_FAILURE_WINDOW
    seconds, raises LoginThrottled without checking the password (which also spares the slow
    password hasher under attack). A right password clears the count. The count lives in the
    cache: while Redis is down, passwords are checked unthrottled (the slow hasher and the second
    factor's own throttling still stand) rather than refusing every login.
    """
    count_key, until_key = _failure_keys(username)
    retry_after = cache_or(None, _throttled_for, count_key=count_key, until_key=until_key)
    if retry_after is not None:
        raise LoginThrottled(retry_after)
    user = authenticate(request, username=username, password=password)
    if user is None:
        cache_or(None, _count_password_failure, count_key=count_key, until_key=until_key)
        raise InvalidCredentials
    cache_or(None, cache.delete_many, [count_key, until_key])
    return user


def _throttled_for(*, count_key: str, until_key: str) -> int | None:
    """Seconds until this username may try a password again; None when it may now."""
    if (cache.get(count_key) or 0) < settings.LOGIN_FAILURE_LIMIT:
        return None
    until = cache.get(until_key) or time.time() + settings.LOGIN_FAILURE_WINDOW
    return max(1, math.ceil(until - time.time()))


def _failure_keys(username: str) -> tuple[str, str]:
    # Hashed: usernames may hold characters a cache key should not, and stay out of Redis.
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{digest}", f"login-failures-until:{digest}"


def _count_password_failure(*, count_key: str, until_key: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    cache.add(until_key, time.time() + window, timeout=window)
    cache.add(count_key, 0, timeout=window)
    try:
        count = cache.incr(count_key)  # atomic: concurrent failures are all counted
    except ValueError:  # the window ended between add and incr
        cache.set(count_key, count := 1, timeout=window)
    if count == settings.LOGIN_FAILURE_LIMIT:
        logger.warning("Password logins throttled after repeated failures")


def second_factor_required(*, user: User, enrolled: bool) -> bool:
    """Whether a login must end with a second factor: always for people who have one, and for
    those TWO_FACTOR_REQUIRED covers (who must then enrol one)."""
    return enrolled or selectors.covered_by_policy(user=user)


# --- Authenticators (TOTP devices) ----------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    """A new unconfirmed authenticator, and the unfinished one it replaced, if any."""

    device: SealedTOTPDevice
    replaced: SealedTOTPDevice | None


def start_enrolment(*, user: User, name: str = DEFAULT_DEVICE_NAME) -> Enrolment:
    """A new unconfirmed TOTP device with a fresh 160-bit key, sealed.

    The person's unconfirmed device goes: its key was shown but never confirmed, and only the
    latest enrolment can be finished. The answer says which one that was.
    """
    with transaction.atomic():
        unfinished = SealedTOTPDevice.objects.filter(user=user, confirmed=False)
        replaced = unfinished.order_by("-id").first()
        unfinished.delete()
        device = SealedTOTPDevice.objects.create(user=user, name=name, confirmed=False)
    return Enrolment(device=device, replaced=replaced)


def pending_enrolment(*, user: User) -> SealedTOTPDevice:
    """The person's unconfirmed device, made on first need, so reloading the page keeps its key."""
    device = SealedTOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    return device or start_enrolment(user=user).device


def confirm_enrolment(
    *, device: SealedTOTPDevice, code: str, token: UserToken | None = None, at: float | None = None
) -> bool:
    """Confirm an unconfirmed device with a first code from it: from now on it can be used.

    The code is accepted like any other (once, throttled); `token` is marked verified by it.
    """
    with transaction.atomic():
        accepted = verify_totp(devices=[device], code=normalize_code(code), token=token, at=at)
        if accepted is None:
            return False
        SealedTOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
    events.record("device_added", user=device.user, device_id=device.pk, device_kind="totp")
    return True


def remove_totp_device(
    *, device: SealedTOTPDevice, accepted_by: Device | None = None
) -> Device | None:
    """Remove an authenticator; callers ask for a current code first when the person has one.

    Returns the device a verified session stays bound to (django-otp ties verification to one):
    the one that accepted the code for this removal, unless that is the one removed, in which case
    any confirmed device left; None when the person has none left.
    """
    removed_pk, user = device.pk, device.user
    device.delete()
    events.record("device_removed", user=user, device_id=removed_pk, device_kind="totp")
    if accepted_by is not None and not (
        isinstance(accepted_by, SealedTOTPDevice) and accepted_by.pk == removed_pk
    ):
        return accepted_by
    return next(devices_for_user(user, confirmed=True), None)


def provisioning_uri(*, device: SealedTOTPDevice) -> str:
    """otpauth://totp/<issuer>:<account>?secret=…&issuer=… (with OTP_TOTP_ISSUER)."""
    return device.config_url


def grouped_secret(*, device: SealedTOTPDevice) -> str:
    """The base32 key in groups of four, for typing into an authenticator by hand."""
    secret = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- Backup codes ---------------------------------------------------------------------------------


def generate_backup_codes(*, user: User, count: int = BACKUP_CODE_COUNT) -> list[str]:
    """Replace the person's backup codes with `count` new ones, returned to be shown once.

    Only their keyed hashes are stored, so no page, answer or admin screen can show them again.
    Each is usable once. Codes are never all digits, so they cannot be mistaken for TOTP codes.
    """
    codes = [_new_backup_code() for _ in range(count)]
    with transaction.atomic():
        device = selectors.backup_device(user=user) or BackupCodeDevice.objects.create(
            user=user, name=BACKUP_DEVICE_NAME, confirmed=True
        )
        device.codes.all().delete()
        BackupCode.objects.bulk_create(
            BackupCode(device=device, digest=backup_code_digest(user_id=user.pk, code=code))
            for code in codes
        )
    events.record("backup_codes_generated", user=user, count=count)
    return codes


def _new_backup_code() -> str:
    """8 characters of base32 (40 random bits), lower-case, with a letter in it."""
    while True:
        code = b32encode(secrets.token_bytes(5)).decode("ascii").lower()
        if not code.isdigit():
            return code


# --- Staff ----------------------------------------------------------------------------------------


def reset_second_factor(*, user: User) -> int:
    """Remove every OTP device of `user` (authenticators, backup codes) and revoke their tokens,
    for staff helping someone who lost their phone.

    Tokens go too: one verified with a lost phone must not outlive the reset. Returns the number
    of devices removed (their backup codes not counted).
    """
    removed = 0
    with transaction.atomic():
        for model in device_classes():
            _, per_model = model.objects.filter(user=user).delete()
            removed += per_model.get(model._meta.label, 0)
        SecondFactorLock.objects.filter(user=user).delete()  # a fresh start: no count, no lock
        revoke_user_tokens(user=user)
    return removed


def unlock_second_factor(*, user: User) -> bool:
    """Lift the lock of a person's second-factor step and clear their failure counts (the
    account's and every device's throttling), for staff who checked it is them. Returns whether
    it was locked."""
    with transaction.atomic():
        was_locked = SecondFactorLock.objects.filter(user=user, locked_at__isnull=False).exists()
        SecondFactorLock.objects.filter(user=user).update(consecutive_failures=0, locked_at=None)
        for model in (SealedTOTPDevice, BackupCodeDevice):
            model.objects.filter(user=user).update(
                throttling_failure_count=0, throttling_failure_timestamp=None
            )
    if was_locked:
        events.record("unlocked", user=user, by="staff")
    return was_locked
