"""Reads: a person's devices, and a user token together with them for the verify path."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User, UserToken

from . import sql


def confirmed_totp_devices(*, user: User) -> list[TOTPDevice]:
    return list(TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id"))


def totp_devices(*, user: User) -> list[TOTPDevice]:
    """All the person's TOTP devices, confirmed ones first."""
    return list(TOTPDevice.objects.filter(user=user).order_by("-confirmed", "id"))


def unconfirmed_totp_device(*, user: User, device_id: int) -> TOTPDevice | None:
    """The person's own device being enrolled; None for anyone else's or a confirmed one."""
    return TOTPDevice.objects.filter(user=user, pk=device_id, confirmed=False).first()


def totp_device(*, user: User, device_id: int) -> TOTPDevice | None:
    """One of the person's TOTP devices, confirmed or not; None for anyone else's."""
    return TOTPDevice.objects.filter(user=user, pk=device_id).first()


def backup_device(*, user: User) -> StaticDevice | None:
    """The static device holding the person's backup codes, when they have generated some."""
    return StaticDevice.objects.filter(user=user, confirmed=True).order_by("id").first()


def has_second_factor(*, user: User) -> bool:
    """The person has a confirmed device of any kind (authenticator app, backup codes, passkey),
    so a login must ask for a second factor."""
    return user_has_device(user, confirmed=True)


def has_code_factor(*, user: User) -> bool:
    """The person can type a code: a confirmed authenticator app, or backup codes."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or StaticToken.objects.filter(device__user=user, device__confirmed=True).exists()
    )


@dataclass(frozen=True)
class Overview:
    """What the two-factor page shows."""

    totp_devices: list[TOTPDevice]
    backup_codes_left: int
    has_backup_codes: bool


def overview(*, user: User) -> Overview:
    devices = totp_devices(user=user)
    device = backup_device(user=user)
    left = StaticToken.objects.filter(device=device).count() if device else 0
    return Overview(totp_devices=devices, backup_codes_left=left, has_backup_codes=bool(device))


def token_with_totp_devices(*, digest: str, now: datetime) -> UserToken | None:
    """The live user token with this digest, with `.user` and `.totp_devices` (the person's
    confirmed TOTP devices) loaded by one query; None when there is no such token."""
    with connection.cursor() as cursor:
        sql.BEARER_WITH_TOTP_DEVICES.execute(
            cursor, [digest, connection.ops.adapt_datetimefield_value(now)]
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    token_end = len(sql.TOKEN_COLUMNS)
    user_end = token_end + len(sql.USER_COLUMNS)
    first = rows[0]
    token = _instance(UserToken, sql.TOKEN_COLUMNS, first[:token_end])
    token.verified_at = _aware(token.verified_at)
    token.user = _instance(User, sql.USER_COLUMNS, first[token_end:user_end])
    token.totp_devices = [_device(row[user_end:]) for row in rows if row[user_end] is not None]
    return token


def _device(values: tuple) -> TOTPDevice:
    device = _instance(TOTPDevice, sql.DEVICE_COLUMNS, values)
    device.throttling_failure_timestamp = _aware(device.throttling_failure_timestamp)
    return device


def _instance(model: type[Model], columns: tuple[str, ...], values: tuple) -> Model:
    """A model instance from some of its columns, the others deferred, as the ORM builds one."""
    by_name = dict(zip(columns, values, strict=True))
    names = [f.attname for f in model._meta.concrete_fields if f.attname in by_name]
    return model.from_db(connection.alias, names, [by_name[name] for name in names])


def _aware(value: datetime | None) -> datetime | None:
    """PostgreSQL returns aware datetimes; SQLite (the embedded default) naive ones in UTC."""
    if value is not None and timezone.is_naive(value):
        return value.replace(tzinfo=UTC)
    return value
