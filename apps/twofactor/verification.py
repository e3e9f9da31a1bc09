"""Checking a second-factor code: a TOTP code or a backup code, each accepted once.

The TOTP maths and the throttling policy are django-otp's (`django_otp.oath.TOTP`,
`ThrottlingMixin.verify_is_allowed`). What differs from `TOTPDevice.verify_token` is how the result
is written: instead of read-check-save, a code is accepted by one conditional UPDATE (see
`sql.SQL_ACCEPT_TOTP_STEP`), so two requests racing with the same code cannot both win, and the
write touches only the columns that change. Failures are counted with `count = count + 1` in the
database, so concurrent failures are all counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User, UserToken
from apps.core import metrics

from . import selectors, sql


class CodeThrottled(Exception):
    """Too many wrong codes: nothing is checked until `retry_after` seconds have passed."""

    def __init__(self, retry_after: int):
        super().__init__(f"verification throttled for {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Match:
    device: TOTPDevice
    t: int  # the time step the code belongs to
    drift: int  # the device's drift once this code is accepted


def normalize_code(code: str) -> str:
    """What people type: spaces and dashes from grouping dropped, backup codes lower-cased."""
    return "".join(code.split()).replace("-", "").lower()


def verify_code(
    *,
    user: User,
    code: str,
    token: UserToken | None = None,
    totp_devices: Sequence[TOTPDevice] | None = None,
    at: float | None = None,
) -> Device | None:
    """The person's device that accepts `code` (a TOTP code or a backup code), or None.

    Digits are a TOTP code, checked against the person's confirmed TOTP devices (`totp_devices`
    when the caller has read them already); anything else is a backup code. When `token` is given,
    an accepted code marks it verified. `at` is the clock the TOTP code is checked against (now by
    default). Raises CodeThrottled when every device that could check the code is throttled.
    """
    code = normalize_code(code)
    if code.isdigit():
        if totp_devices is None:
            totp_devices = selectors.confirmed_totp_devices(user=user)
        return verify_totp(devices=totp_devices, code=code, token=token, at=at)
    return verify_backup_code(user=user, code=code, token=token)


def verify_totp(
    *,
    devices: Sequence[TOTPDevice],
    code: str,
    token: UserToken | None = None,
    at: float | None = None,
) -> TOTPDevice | None:
    """The device among `devices` that accepts the TOTP `code`, or None; at most one write.

    Throttled devices are skipped without checking the code against them, so a throttled answer
    never tells whether the code was right.
    """
    allowed = [device for device in devices if device.verify_is_allowed()[0]]
    if devices and not allowed:
        metrics.record_otp_verification("throttled")
        raise CodeThrottled(_retry_after(devices))
    at = time.time() if at is None else at
    match = _match_totp(allowed, code=code, at=at)
    now = timezone.now()
    if match is not None:
        if _accept_totp(match, token=token, now=now):
            metrics.record_otp_verification("accepted")
            return match.device
        allowed = [match.device]  # a lost race is a replay, and counts as one failure
    if metrics.enabled():
        replayed = match is not None or _used_before(allowed, code=code, at=at)
        metrics.record_otp_verification("replayed" if replayed else "rejected")
    _count_failure(TOTPDevice, devices=allowed, now=now)
    return None


def verify_backup_code(*, user: User, code: str, token: UserToken | None = None) -> Device | None:
    """The static device whose backup `code` this is, or None. The code is deleted as it is
    accepted: one DELETE, so of two requests with the same code exactly one wins."""
    device = selectors.backup_device(user=user)
    if device is None:
        metrics.record_otp_verification("rejected")
        return None
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        metrics.record_otp_verification("throttled")
        raise CodeThrottled(_retry_after([device]))
    now = timezone.now()
    used, _ = StaticToken.objects.filter(device=device, token=code).delete()
    if not used:
        metrics.record_otp_verification("rejected")  # a used backup code is gone: no replay
        _count_failure(StaticDevice, devices=[device], now=now)
        return None
    metrics.record_otp_verification("accepted")
    StaticDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None, last_used_at=now
    )
    if token is not None:
        mark_token_verified(token=token, now=now)
    return device


def mark_token_verified(*, token: UserToken, now: datetime) -> None:
    UserToken.objects.filter(pk=token.pk, verified_at__isnull=True).update(verified_at=now)
    token.verified_at = token.verified_at or now


def _match_totp(devices: Sequence[TOTPDevice], *, code: str, at: float) -> _Match | None:
    """The first device for which `code` is a valid code not older than its last accepted one,
    within the device's tolerance (±1 step by default)."""
    for device in devices:
        if len(code) != device.digits:
            continue
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = at
        if totp.verify(int(code), tolerance=device.tolerance, min_t=device.last_t + 1):
            sync = getattr(settings, "OTP_TOTP_SYNC", True)
            return _Match(device=device, t=totp.t(), drift=totp.drift if sync else device.drift)
    return None


def _used_before(devices: Sequence[TOTPDevice], *, code: str, at: float) -> bool:
    """Whether `code`, refused, is right now for one of `devices` but of a step already accepted:
    a replay (for metrics only; it is refused like any wrong code)."""
    for device in devices:
        if len(code) == device.digits:
            totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
            totp.time = at
            if totp.verify(int(code), tolerance=device.tolerance):
                return True
    return False


def _accept_totp(match: _Match, *, token: UserToken | None, now: datetime) -> bool:
    """Write the accepted step; True when this request won it. Marks an unverified `token`
    verified in the same statement on PostgreSQL, in the same transaction elsewhere."""
    device = match.device
    adapted_now = connection.ops.adapt_datetimefield_value(now)
    step = [match.t, match.drift, adapted_now, device.pk, match.t]
    with connection.cursor() as cursor:
        if token is None or token.is_verified:
            sql.ACCEPT_TOTP_STEP.execute(cursor, step)
            accepted = cursor.rowcount == 1
        elif connection.vendor == "postgresql":
            sql.ACCEPT_TOTP_STEP_AND_MARK_VERIFIED.execute(cursor, [*step, adapted_now, token.pk])
            accepted = cursor.fetchone()[0] == 1
            token.verified_at = now if accepted else None
        else:
            with transaction.atomic():
                sql.ACCEPT_TOTP_STEP.execute(cursor, step)
                accepted = cursor.rowcount == 1
                if accepted:
                    mark_token_verified(token=token, now=now)
    if accepted:
        device.last_t, device.drift = match.t, match.drift
        device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    return accepted


def _count_failure(model: type[Device], *, devices: Sequence[Device], now: datetime) -> None:
    """One more failure on each device that checked the code (django-otp's throttling fields)."""
    if devices:
        model.objects.filter(pk__in=[device.pk for device in devices]).update(
            throttling_failure_count=F("throttling_failure_count") + 1,
            throttling_failure_timestamp=now,
        )


def _retry_after(devices: Sequence[Device]) -> int:
    """Whole seconds until the first of these throttled devices may check a code again."""
    now = timezone.now()
    waits = [
        (info["locked_until"] - now).total_seconds()
        for allowed, info in (device.verify_is_allowed() for device in devices)
        if not allowed
    ]
    return max(1, math.ceil(min(waits))) if waits else 1
