"""Checking a second-factor code: a TOTP code or a backup code, each accepted once.

The TOTP maths and the throttling policy are django-otp's (`django_otp.oath.TOTP`,
`ThrottlingMixin.verify_is_allowed`). What differs from django-otp's read-check-save is how the
result is written: a code is accepted by one conditional UPDATE (`last_t < t`; with a user token
on PostgreSQL, `sql.SQL_ACCEPT_TOTP_STEP_AND_MARK_BEARER`, which marks the token in the same
statement; otherwise the ORM's `filter(pk=…, last_t__lt=t).update(…)`), so two requests racing
with the same code cannot both win, and a backup code by deleting its row. Failures are counted
with `count = count + 1` in the database, so concurrent failures are all counted, and only on the
devices that checked the code: a right code resets the device it matched and no other
(django-otp#110).

Beyond django-otp's delays, an account's consecutive failed codes are capped (OTP_MAX_FAILURES):
at the cap its second-factor step is locked (`SecondFactorLock`) until staff unlock it, or a
backup code is used when OTP_LOCK_ALLOWS_BACKUP_CODES.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone
from django_otp.models import Device
from django_otp.oath import TOTP

from apps.accounts.models import User, UserToken
from apps.core import metrics

from . import events, selectors, sql
from .models import BackupCode, BackupCodeDevice, SealedTOTPDevice, SecondFactorLock
from .sealing import backup_code_digests

# verify_code's `lock` when the caller has not read it: read it then.
UNKNOWN = object()


class CodeRefused(Exception):
    """No code is checked now, whatever was sent: the answer must not tell if it was right."""


class CodeThrottled(CodeRefused):
    """Too many wrong codes: nothing is checked until `retry_after` seconds have passed."""

    def __init__(self, retry_after: int):
        super().__init__(f"verification throttled for {retry_after} s")
        self.retry_after = retry_after


class SecondFactorLocked(CodeRefused):
    """The account's failed codes reached OTP_MAX_FAILURES: codes are refused until staff
    unlock it (or a backup code, when OTP_LOCK_ALLOWS_BACKUP_CODES)."""

    def __init__(self):
        super().__init__("second factor locked")
        self.backup_codes_allowed = settings.OTP_LOCK_ALLOWS_BACKUP_CODES


@dataclass(frozen=True)
class _Match:
    device: SealedTOTPDevice
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
    totp_devices: Sequence[SealedTOTPDevice] | None = None,
    lock: SecondFactorLock | object | None = UNKNOWN,
    at: float | None = None,
    request: HttpRequest | None = None,
) -> Device | None:
    """The person's device that accepts `code` (a TOTP code or a backup code), or None.

    Digits are a TOTP code, checked against the person's confirmed TOTP devices (`totp_devices`
    and `lock` when the caller has read them already); anything else is a backup code. When
    `token` is given, an accepted code marks it verified and renews its re-authentication window.
    `at` is the clock the TOTP code is checked against (now by default). Raises CodeThrottled
    when every device that could check the code is throttled, SecondFactorLocked when the
    account is locked. A wrong code and a throttled check are recorded (`otp_failed`,
    `otp_throttled`), in `request` when given.
    """
    try:
        return _verify_code(
            user=user,
            code=normalize_code(code),
            token=token,
            totp_devices=totp_devices,
            lock=lock,
            at=at,
            request=request,
        )
    except CodeThrottled as exc:
        events.record("otp_throttled", user=user, request=request, retry_after=exc.retry_after)
        raise


def _verify_code(
    *,
    user: User,
    code: str,
    token: UserToken | None,
    totp_devices: Sequence[SealedTOTPDevice] | None,
    lock: SecondFactorLock | object | None,
    at: float | None,
    request: HttpRequest | None,
) -> Device | None:
    """verify_code's work. A code no device could check (the person has no device of its kind)
    is not a failure: nothing is counted or recorded for it."""
    if lock is UNKNOWN:
        lock = selectors.second_factor_lock(user=user)
    locked = lock is not None and lock.is_locked
    if code.isdigit():
        if locked:
            raise SecondFactorLocked
        if totp_devices is None:
            totp_devices = selectors.confirmed_totp_devices(user=user)
        checked, kind = bool(totp_devices), "totp"
        device = verify_totp(devices=totp_devices, code=code, token=token, at=at)
    else:
        if locked and not settings.OTP_LOCK_ALLOWS_BACKUP_CODES:
            raise SecondFactorLocked
        backup = selectors.backup_device(user=user)
        checked, kind = backup is not None, "backup_code"
        device = verify_backup_code(
            user=user, code=code, token=token, device=backup, request=request
        )
    if device is not None:
        if lock is not None and (lock.consecutive_failures or locked):
            unlocked_by = "backup_code" if locked else None
            _clear_failures(user=user, unlocked_by=unlocked_by, request=request)
    elif checked:
        events.record("otp_failed", user=user, request=request, code_kind=kind)
        _count_account_failure(user=user, lock=lock, request=request)
    return device


def verify_code_with_token(*, token: UserToken, code: str, request=None) -> Device | None:
    """`verify_code` for the person behind a user token read with their confirmed TOTP devices
    and lock (`selectors.token_with_totp_devices`): the mobile API's check, one write at most."""
    return verify_code(
        user=token.user,
        code=code,
        token=token,
        totp_devices=token.totp_devices,
        lock=token.second_factor_lock,
        request=request,
    )


def verify_totp(
    *,
    devices: Sequence[SealedTOTPDevice],
    code: str,
    token: UserToken | None = None,
    at: float | None = None,
) -> SealedTOTPDevice | None:
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
    _count_failure(SealedTOTPDevice, devices=allowed, now=now)
    return None


def verify_backup_code(
    *,
    user: User,
    code: str,
    token: UserToken | None = None,
    device: BackupCodeDevice | object | None = UNKNOWN,
    request: HttpRequest | None = None,
) -> BackupCodeDevice | None:
    """The person's backup-code device if `code` is one of its unused codes, else None.

    The code is spent as it is accepted: one DELETE of its digest, so of two requests with the
    same code exactly one wins.
    """
    if device is UNKNOWN:
        device = selectors.backup_device(user=user)
    if device is None:
        metrics.record_otp_verification("rejected")
        return None
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        metrics.record_otp_verification("throttled")
        raise CodeThrottled(_retry_after([device]))
    now = timezone.now()
    digests = backup_code_digests(user_id=user.pk, code=code)
    used, _ = BackupCode.objects.filter(device=device, digest__in=digests).delete()
    if not used:
        metrics.record_otp_verification("rejected")  # a used backup code is gone: no replay
        _count_failure(BackupCodeDevice, devices=[device], now=now)
        return None
    metrics.record_otp_verification("accepted")
    BackupCodeDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=0, throttling_failure_timestamp=None, last_used_at=now
    )
    if token is not None:
        mark_token_verified(token=token, now=now)
    events.record("backup_code_used", user=user, request=request, left=device.codes.count())
    return device


def mark_token_verified(*, token: UserToken, now: datetime) -> None:
    """A code was entered with `token`: it is verified (from the first time) and its
    re-authentication window starts again."""
    UserToken.objects.filter(pk=token.pk).update(
        verified_at=Coalesce(F("verified_at"), Value(now)), reauthenticated_at=now
    )
    token.verified_at, token.reauthenticated_at = token.verified_at or now, now


def _match_totp(devices: Sequence[SealedTOTPDevice], *, code: str, at: float) -> _Match | None:
    """The first device for which `code` is a valid code not older than its last accepted one,
    within the device's tolerance (±1 step by default). Each device's key is unsealed once."""
    for device in devices:
        if len(code) != device.digits:
            continue
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = at
        if totp.verify(int(code), tolerance=device.tolerance, min_t=device.last_t + 1):
            sync = getattr(settings, "OTP_TOTP_SYNC", True)
            return _Match(device=device, t=totp.t(), drift=totp.drift if sync else device.drift)
    return None


def _used_before(devices: Sequence[SealedTOTPDevice], *, code: str, at: float) -> bool:
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
    """Write the accepted step; True when this request won it. Marks `token` (verified, window
    renewed) in the same statement on PostgreSQL, in the same transaction elsewhere."""
    device = match.device
    if token is not None and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL_ACCEPT_TOTP_STEP_AND_MARK_BEARER,
                [match.t, match.drift, now, device.pk, match.t, now, now, token.pk],
            )
            accepted = cursor.fetchone()[0] == 1
        if accepted:
            token.verified_at, token.reauthenticated_at = token.verified_at or now, now
    else:
        with transaction.atomic():
            accepted = SealedTOTPDevice.objects.filter(pk=device.pk, last_t__lt=match.t).update(
                last_t=match.t,
                drift=match.drift,
                last_used_at=now,
                throttling_failure_count=0,
                throttling_failure_timestamp=None,
            )
            if accepted and token is not None:
                mark_token_verified(token=token, now=now)
    if accepted:
        device.last_t, device.drift = match.t, match.drift
        device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    return bool(accepted)


def _count_failure(model: type[Device], *, devices: Sequence[Device], now: datetime) -> None:
    """One more failure on each device that checked the code (django-otp's throttling fields)."""
    if devices:
        model.objects.filter(pk__in=[device.pk for device in devices]).update(
            throttling_failure_count=F("throttling_failure_count") + 1,
            throttling_failure_timestamp=now,
        )


def _count_account_failure(
    *, user: User, lock: SecondFactorLock | None, request: HttpRequest | None
) -> None:
    """One more consecutive failure on the account; at OTP_MAX_FAILURES, lock it (recorded
    once: the conditional UPDATE that sets `locked_at` succeeds for one request only)."""
    if lock is None:
        lock, created = SecondFactorLock.objects.get_or_create(
            user=user, defaults={"consecutive_failures": 1}
        )
    else:
        created = False
    rows = SecondFactorLock.objects.filter(pk=lock.pk)
    if not created:
        rows.update(consecutive_failures=F("consecutive_failures") + 1)
    limit = settings.OTP_MAX_FAILURES
    if limit and rows.filter(locked_at__isnull=True, consecutive_failures__gte=limit).update(
        locked_at=timezone.now()
    ):
        events.record("locked", user=user, request=request, failures=limit)


def _clear_failures(*, user: User, unlocked_by: str | None, request: HttpRequest | None) -> None:
    """A right code: the account's count starts again, and a lock is lifted (backup code)."""
    SecondFactorLock.objects.filter(user=user).update(consecutive_failures=0, locked_at=None)
    if unlocked_by:
        events.record("unlocked", user=user, request=request, by=unlocked_by)


def _retry_after(devices: Sequence[Device]) -> int:
    """Whole seconds until the first of these throttled devices may check a code again."""
    now = timezone.now()
    waits = [
        (info["locked_until"] - now).total_seconds()
        for allowed, info in (device.verify_is_allowed() for device in devices)
        if not allowed
    ]
    return max(1, math.ceil(min(waits))) if waits else 1
