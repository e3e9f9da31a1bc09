"""Writes: password checks with throttling, enrolling and removing authenticators, backup codes.

Checking codes lives in `verification.py`; these functions call it where a code is asked for.
"""

from __future__ import annotations

import logging
import time
from base64 import b32encode

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key

from apps.accounts.models import User, UserToken
from apps.core.client_address import client_address

from . import selectors
from .login_limits import LoginThrottled, start_password_check  # noqa: F401 (callers catch it here)
from .verification import normalize_code, verify_totp

logger = logging.getLogger(__name__)

BACKUP_CODE_COUNT = 10
DEFAULT_DEVICE_NAME = "Authenticator app"
BACKUP_DEVICE_NAME = "Backup codes"


class InvalidCredentials(Exception):
    """The username and password do not match an active account."""


# --- Passwords ------------------------------------------------------------------------------------


def authenticate_password(*, request: HttpRequest | None, username: str, password: str) -> User:
    """The active person with this username and password.

    The check must first pass the login limits (per client address, per username, per process;
    `login_limits.py`), which raise LoginThrottled without hashing anything: the slow password
    hasher is what a flood of wrong passwords would otherwise spend the workers on.
    """
    address = client_address(request.META) if request is not None else None
    check = start_password_check(address=address, username=username)
    user = authenticate(request, username=username, password=password)
    if user is None:
        check.failed()
        raise InvalidCredentials
    check.succeeded()
    return user


def second_factor_required(*, enrolled: bool) -> bool:
    """Whether a login must end with a code: always for people with an authenticator, and for
    everyone (who must then enrol one) when OTP_REQUIRED is on."""
    return enrolled or settings.OTP_REQUIRED


# --- Authenticators (TOTP devices) ----------------------------------------------------------------


def start_enrolment(*, user: User, name: str = DEFAULT_DEVICE_NAME) -> TOTPDevice:
    """A new unconfirmed TOTP device with a fresh 160-bit key (django-otp's default).

    The person's other unconfirmed devices go: their keys were shown but never confirmed, and
    only the latest enrolment can be finished.
    """
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=name, confirmed=False)


def new_totp_key() -> str:
    """A fresh 160-bit TOTP key, hex-encoded, as django-otp makes them."""
    return default_key()


def pending_totp_device(*, user: User, key: str) -> TOTPDevice:
    """An authenticator being added on the pages: not in the database until its first code
    (`finish_enrolment`), but able to draw its QR code."""
    return TOTPDevice(user=user, name=DEFAULT_DEVICE_NAME, key=key, confirmed=False)


def finish_enrolment(
    *, device: TOTPDevice, code: str, at: float | None = None
) -> TOTPDevice | None:
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
    logger.info("Authenticator confirmed", extra={"user_id": device.user_id})
    return device


def confirm_enrolment(
    *, device: TOTPDevice, code: str, token: UserToken | None = None, at: float | None = None
) -> bool:
    """Confirm an unconfirmed device with a first code from it: from now on it can be used.

    The code is accepted like any other (once, throttled); `token` is marked verified by it.
    """
    with transaction.atomic():
        accepted = verify_totp(devices=[device], code=normalize_code(code), token=token, at=at)
        if accepted is None:
            return False
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        device.confirmed = True
    logger.info("Authenticator confirmed", extra={"user_id": device.user_id})
    return True


def remove_totp_device(*, device: TOTPDevice, accepted_by: Device | None = None) -> Device | None:
    """Remove an authenticator; callers ask for a current code first when the person has one.

    Returns the device a verified session stays bound to (django-otp ties verification to one):
    the one that accepted the code for this removal, unless that is the one removed, in which case
    any confirmed device left; None when the person has none left.
    """
    removed_pk, user = device.pk, device.user
    device.delete()
    logger.info("Authenticator removed", extra={"user_id": user.pk})
    if accepted_by is not None and not (
        isinstance(accepted_by, TOTPDevice) and accepted_by.pk == removed_pk
    ):
        return accepted_by
    return next(devices_for_user(user, confirmed=True), None)


def provisioning_uri(*, device: TOTPDevice) -> str:
    """otpauth://totp/<issuer>:<account>?secret=…&issuer=… (django-otp's, with OTP_TOTP_ISSUER)."""
    return device.config_url


def grouped_secret(*, device: TOTPDevice) -> str:
    """The base32 key in groups of four, for typing into an authenticator by hand."""
    secret = b32encode(device.bin_key).decode("ascii").rstrip("=")
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# --- Backup codes (a django-otp static device) ----------------------------------------------------


def generate_backup_codes(*, user: User, count: int = BACKUP_CODE_COUNT) -> list[str]:
    """Replace the person's backup codes with `count` new ones, returned to be shown once.

    Each is usable once. Codes are never all digits, so they cannot be mistaken for TOTP codes.
    """
    codes = [_new_backup_code() for _ in range(count)]
    with transaction.atomic():
        device = selectors.backup_device(user=user) or StaticDevice.objects.create(
            user=user, name=BACKUP_DEVICE_NAME, confirmed=True
        )
        device.token_set.all().delete()
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    logger.info("Backup codes generated", extra={"user_id": user.pk})
    return codes


def _new_backup_code() -> str:
    while True:
        code = StaticToken.random_token()  # 8 characters of base32: 40 random bits
        if not code.isdigit():
            return code
