"""Reads: a person's passkeys."""

from __future__ import annotations

from apps.accounts.models import User

from ..models import Passkey


def passkeys(*, user: User) -> list[Passkey]:
    """The person's passkeys, oldest first."""
    return list(Passkey.objects.filter(user=user).order_by("created_at", "id"))


def passkey(*, user: User, passkey_id: int) -> Passkey | None:
    """One of the person's passkeys; None for anyone else's."""
    return Passkey.objects.filter(user=user, pk=passkey_id).first()


def has_passkey(*, user: User) -> bool:
    return Passkey.objects.filter(user=user, confirmed=True).exists()
