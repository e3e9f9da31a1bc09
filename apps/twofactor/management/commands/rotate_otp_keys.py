"""`python manage.py rotate_otp_keys`: re-encrypt every TOTP secret with the first key of
OTP_ENCRYPTION_KEYS.

To rotate: put a new key first in OTP_ENCRYPTION_KEYS (keeping the old one after it), deploy,
run this, then remove the old key. Safe to interrupt and to run again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.twofactor.rotation import reseal_totp_keys


class Command(BaseCommand):
    help = (
        "Re-encrypt every TOTP secret with the first OTP_ENCRYPTION_KEYS key, in batches "
        "(safe to interrupt and run again); then the other keys can be removed."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Secrets per transaction (500)."
        )

    def handle(self, *args, batch_size: int, **options) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        rotation = reseal_totp_keys(batch_size=batch_size)
        self.stdout.write(
            f"Re-encrypted {rotation.resealed} secrets with the first key; "
            f"{rotation.current} already were."
        )
        if rotation.unreadable:
            ids = ", ".join(str(pk) for pk in rotation.unreadable)
            # Non-zero exit: removing a key now would disable these authenticators for good.
            raise CommandError(
                f"{len(rotation.unreadable)} secrets open with none of OTP_ENCRYPTION_KEYS "
                f"(authenticator ids {ids}): keep or restore the key they were sealed with."
            )
