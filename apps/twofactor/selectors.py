"""Reads: a person's devices and lock, the policy, a user token with its devices for the
verify path, and a person's security events."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet
from django.utils import timezone
from django_otp import device_classes
from django_otp.plugins.otp_static.models import StaticDevice

from apps.accounts.models import User, UserToken

from . import sql
from .models import (
    BackupCode,
    BackupCodeDevice,
    Passkey,
    SealedTOTPDevice,
    SecondFactorLock,
    SecurityEvent,
)


def confirmed_totp_devices(*, user: User) -> list[SealedTOTPDevice]:
    return list(SealedTOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))


def totp_devices(*, user: User) -> list[SealedTOTPDevice]:
    """All the person's TOTP devices, confirmed ones first."""
    return list(SealedTOTPDevice.objects.filter(user=user).order_by("-confirmed", "id"))


def unconfirmed_totp_device(*, user: User, device_id: int) -> SealedTOTPDevice | None:
    """The person's own device being enrolled; None for anyone else's or a confirmed one."""
    return SealedTOTPDevice.objects.filter(user=user, pk=device_id, confirmed=False).first()


def totp_device(*, user: User, device_id: int) -> SealedTOTPDevice | None:
    """One of the person's TOTP devices, confirmed or not; None for anyone else's."""
    return SealedTOTPDevice.objects.filter(user=user, pk=device_id).first()


def backup_device(*, user: User) -> BackupCodeDevice | None:
    """The device holding the person's backup codes, when they have generated some."""
    return BackupCodeDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def device_kind(device: Model) -> str:
    """What a security event calls a device: `totp`, `backup_code` or `passkey`."""
    if isinstance(device, BackupCodeDevice):
        return "backup_code"
    if isinstance(device, Passkey):
        return "passkey"
    return "totp"


def security_events(*, user: User) -> QuerySet[SecurityEvent]:
    """The person's security events, newest first."""
    return SecurityEvent.objects.filter(user=user).order_by("-at", "-id")


def second_factor_lock(*, user: User) -> SecondFactorLock | None:
    """The person's failure count and lock; None when no code of theirs has failed yet."""
    return SecondFactorLock.objects.filter(user=user).first()


def second_factor_is_locked(*, user: User) -> bool:
    """Whether the person's second-factor step is locked (OTP_MAX_FAILURES wrong codes in a row)."""
    return SecondFactorLock.objects.filter(user=user, locked_at__isnull=False).exists()


def has_second_factor(*, user: User, besides_backup_codes: bool = False) -> bool:
    """The person has a confirmed second factor, so a login must ask for it.

    The one answer to that question: any kind of django-otp device counts (authenticator apps,
    backup codes, and any device kind an app adds), as the admin and OTPMiddleware see them.
    `besides_backup_codes`: one that backup codes can stand in for (they back up a factor).
    """
    kinds = [
        model
        for model in device_classes()
        if not (besides_backup_codes and model in (BackupCodeDevice, StaticDevice))
    ]
    return any(model.objects.filter(user=user, confirmed=True).exists() for model in kinds)


def covered_by_policy(*, user: User) -> bool:
    """Whether TWO_FACTOR_REQUIRED asks this person for a second factor."""
    policy = settings.TWO_FACTOR_REQUIRED
    return policy == "all" or (policy == "staff" and (user.is_staff or user.is_superuser))


def has_code_factor(*, user: User) -> bool:
    """The person can type a code: a confirmed authenticator app, or backup codes."""
    return (
        SealedTOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or BackupCode.objects.filter(device__user=user, device__confirmed=True).exists()
    )


@dataclass(frozen=True)
class Overview:
    """What the two-factor page shows."""

    totp_devices: list[SealedTOTPDevice]
    backup_codes_left: int
    has_backup_codes: bool


def overview(*, user: User) -> Overview:
    devices = totp_devices(user=user)
    device = backup_device(user=user)
    left = BackupCode.objects.filter(device=device).count() if device else 0
    return Overview(totp_devices=devices, backup_codes_left=left, has_backup_codes=bool(device))


def token_with_totp_devices(*, digest: str, now: datetime) -> UserToken | None:
    """The live user token with this digest, with `.user`, `.second_factor_lock` (or None) and
    `.totp_devices` (the person's confirmed TOTP devices) loaded by one query (`sql.py`); None
    when there is no such token."""
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL_BEARER_WITH_TOTP_DEVICES,
            [digest, connection.ops.adapt_datetimefield_value(now)],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    person_start = len(sql.TOKEN_COLUMNS)
    lock_start = person_start + len(sql.PERSON_COLUMNS)
    device_start = lock_start + len(sql.LOCK_COLUMNS)
    first = rows[0]
    token = _instance(UserToken, sql.TOKEN_COLUMNS, first[:person_start])
    token.user = _instance(User, sql.PERSON_COLUMNS, first[person_start:lock_start])
    token.second_factor_lock = (
        _instance(SecondFactorLock, sql.LOCK_COLUMNS, first[lock_start:device_start])
        if first[lock_start] is not None
        else None
    )
    token.totp_devices = [
        _instance(SealedTOTPDevice, sql.DEVICE_COLUMNS, row[device_start:])
        for row in rows
        if row[device_start] is not None
    ]
    return token


def _instance(model: type[Model], columns: tuple[str, ...], values: Sequence) -> Model:
    """A model instance from some of its columns, the others deferred, as the ORM builds one.

    Datetimes come back aware from PostgreSQL and naive (in UTC) from SQLite, the embedded
    default; the ORM's converters would make them aware, so this does.
    """
    if len(values) != len(columns):
        raise ValueError(f"{len(values)} values for {len(columns)} columns of {model.__name__}")
    names, positions = _layout(model, columns)
    return model.from_db(connection.alias, names, [_aware(values[i]) for i in positions])


@functools.cache
def _layout(model: type[Model], columns: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """The model's fields among `columns`, in the model's order (as `from_db` takes them), and
    where each one is in `columns`: worked out once, not on every verification."""
    position = {name: i for i, name in enumerate(columns)}
    names = [f.attname for f in model._meta.concrete_fields if f.attname in position]
    return names, [position[name] for name in names]


def _aware(value):
    if isinstance(value, datetime) and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value
