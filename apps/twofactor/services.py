"""Writes: password checks with throttling, enrolling and removing authenticators, backup codes,
and what staff do about a person's second factor.

Checking codes lives in `verification.py`; these functions call it where a code is asked for.
Every change to a person's factors is recorded (`events.record`).
"""

from __future__ import annotations

import logging
import secrets
import time
from base64 import b32encode
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import device_classes, devices_for_user
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from apps.accounts.models import User, UserToken
from apps.accounts.tokens import revoke_user_tokens
from apps.core.client_address import client_address

from . import events, selectors
from .login_limits import LoginThrottled, start_password_check  # noqa: F401 (callers catch it here)
from .models import (
    BackupCode,
    BackupCodeDevice,
    SealedTOTPDevice,
    SecondFactorLock,
    TrustedBrowser,
)
from .sealing import backup_code_digest, new_sealed_totp_key
from .verification import normalize_code, verify_totp

logger = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
DEFAULT_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


class InvalidCredentials(Exception):
    """The username and password do not match an active account."""


# --- Passwords ------------------------------------------------------------------------------------


def authenticate_password(
    *, request: HttpRequest | None, username: str, password: str, login_via: str | None = None
) -> User:
    """The active person with this username and password.

    With `login_via` (the surface logging in: `pages`, `admin`, `api`) a wrong password is
    recorded as `login_failed`, against the account it names when there is one. Re-authenticating
    passes none: a wrong password there is not a login.

    The check must first pass the login limits (per client address, per username, per process;
    `login_limits.py`), which raise LoginThrottled without hashing anything: the slow password
    hasher is what a flood of wrong passwords would otherwise spend the workers on.
    """
    address = client_address(request.META) if request is not None else None
    check = start_password_check(address=address, username=username)
    user = authenticate(request, username=username, password=password)
    if user is None:
        check.failed()
        if login_via is not None:
            named = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
            events.record("login_failed", user=named, request=request, via=login_via)
        raise InvalidCredentials
    check.succeeded()
    return user


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


def new_totp_key() -> str:
    """A fresh 160-bit TOTP key, sealed: what the pages keep in the session while it is being
    added, so the session store never holds it in clear either."""
    return new_sealed_totp_key()


def pending_totp_device(*, user: User, sealed_key: str) -> SealedTOTPDevice:
    """An authenticator being added on the pages: not in the database until its first code
    (`finish_enrolment`), but able to draw its QR code."""
    return SealedTOTPDevice(
        user=user, name=DEFAULT_DEVICE_NAME, sealed_key=sealed_key, confirmed=False
    )


def finish_enrolment(
    *,
    device: SealedTOTPDevice,
    code: str,
    at: float | None = None,
    request: HttpRequest | None = None,
) -> SealedTOTPDevice | None:
    """Save a pending device, confirmed, when `code` is one of its current codes (django-otp's
    TOTP, within the device's tolerance); None, and nothing written, otherwise.

    The accepted step is recorded, so the same code cannot be used again to log in.
    """
    code = normalize_code(code)
    if not code.isdigit() or len(code) != device.digits:
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() if at is None else at
    if not totp.verify(int(code), tolerance=device.tolerance):
        return None
    device.last_t = totp.t()
    if getattr(settings, "OTP_TOTP_SYNC", True):
        device.drift = totp.drift
    device.confirmed = True
    device.last_used_at = timezone.now()
    device.save()
    events.record(
        "device_added", user=device.user, request=request, device_id=device.pk, device_kind="totp"
    )
    return device


def confirm_enrolment(
    *,
    device: SealedTOTPDevice,
    code: str,
    token: UserToken | None = None,
    at: float | None = None,
    request: HttpRequest | None = None,
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
    events.record(
        "device_added", user=device.user, request=request, device_id=device.pk, device_kind="totp"
    )
    return True


def remove_totp_device(
    *,
    device: SealedTOTPDevice,
    accepted_by: Device | None = None,
    request: HttpRequest | None = None,
) -> Device | None:
    """Remove an authenticator; callers ask for a current code first when the person has one.

    Returns the device a verified session stays bound to (django-otp ties verification to one):
    the one that accepted the code for this removal, unless that is the one removed, in which case
    any confirmed device left; None when the person has none left.
    """
    removed_pk, user = device.pk, device.user
    device.delete()
    events.record(
        "device_removed", user=user, request=request, device_id=removed_pk, device_kind="totp"
    )
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


def generate_backup_codes(
    *, user: User, count: int = BACKUP_CODE_COUNT, request: HttpRequest | None = None
) -> list[str]:
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
    events.record("backup_codes_generated", user=user, request=request, count=count)
    return codes


def _new_backup_code() -> str:
    """8 characters of base32 (40 random bits), lower-case, with a letter in it."""
    while True:
        code = b32encode(secrets.token_bytes(5)).decode("ascii").lower()
        if not code.isdigit():
            return code


# --- Staff ----------------------------------------------------------------------------------------


def reset_second_factor(*, user: User, request: HttpRequest | None = None) -> int:
    """Remove every OTP device of `user` (authenticators, backup codes) and revoke their tokens
    and trusted browsers, for staff helping someone who lost their phone.

    Tokens and trusted browsers go too: one verified with a lost phone must not outlive the
    reset. Returns the number of devices removed (their backup codes not counted), recorded as
    one `device_removed`.
    """
    removed = 0
    with transaction.atomic():
        for model in device_classes():
            _, per_model = model.objects.filter(user=user).delete()
            removed += per_model.get(model._meta.label, 0)
        SecondFactorLock.objects.filter(user=user).delete()  # a fresh start: no count, no lock
        revoke_user_tokens(user=user, request=request)
        TrustedBrowser.objects.filter(user=user).delete()  # trusted with the lost devices
        if removed:
            events.record("device_removed", user=user, request=request, by="staff", count=removed)
    return removed


def unlock_second_factor(*, user: User, request: HttpRequest | None = None) -> bool:
    """Lift the lock of a person's second-factor step and clear their failure counts (the
    account's and every device's throttling), for staff who checked it is them. Returns whether
    it was locked."""
    with transaction.atomic():
        was_locked = SecondFactorLock.objects.filter(user=user, locked_at__isnull=False).exists()
        SecondFactorLock.objects.filter(user=user).update(consecutive_failures=0, locked_at=None)
        for model in device_classes():
            if issubclass(model, ThrottlingMixin):
                model.objects.filter(user=user).update(
                    throttling_failure_count=0, throttling_failure_timestamp=None
                )
    if was_locked:
        events.record("unlocked", user=user, request=request, by="staff")
    return was_locked
