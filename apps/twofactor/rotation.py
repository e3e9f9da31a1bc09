"""Moving every sealed TOTP secret to the first OTP_ENCRYPTION_KEYS key, so an old key can go.

In batches, each in its own transaction: an interrupted run keeps what it did, and a new run
skips the secrets already under the first key. A secret changed meanwhile (a new enrolment, a
device re-keyed) is left as it is: it was sealed with the first key anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.fernet import InvalidToken
from django.db import transaction

from .models import SealedTOTPDevice
from .sealing import reseal, sealed_with_first_key


@dataclass
class Rotation:
    resealed: int = 0
    current: int = 0  # already under the first key
    unreadable: list[int] = field(default_factory=list)  # devices no listed key unseals


def reseal_totp_keys(*, batch_size: int = 500) -> Rotation:
    """Re-encrypt every device's key with the first key, `batch_size` devices a transaction."""
    rotation = Rotation()
    last_pk = 0
    while True:
        batch = list(
            SealedTOTPDevice.objects.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "sealed_key")[:batch_size]
        )
        if not batch:
            return rotation
        with transaction.atomic():
            for pk, sealed in batch:
                _reseal_one(pk, sealed, rotation)
        last_pk = batch[-1][0]


def _reseal_one(pk: int, sealed: str, rotation: Rotation) -> None:
    if sealed_with_first_key(sealed):
        rotation.current += 1
        return
    try:
        new = reseal(sealed)
    except InvalidToken:
        rotation.unreadable.append(pk)
        return
    # Conditional: a key sealed again meanwhile is already under the first key.
    rotation.resealed += SealedTOTPDevice.objects.filter(pk=pk, sealed_key=sealed).update(
        sealed_key=new
    )
