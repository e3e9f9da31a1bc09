"""Passkeys (WebAuthn credentials) as django-otp devices, and the challenges they answer."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


class Passkey(TimestampMixin, ThrottlingMixin, Device):
    """A passkey registered by a person: a django-otp device, so it counts as a confirmed second
    factor wherever a TOTP device does (`OTPMiddleware`, `OTPAdminSite`, `user_has_device`).

    It holds no secret: the private key never leaves the authenticator; the public key checks
    its signatures. `passwordless` records whether the authenticator verified the person (PIN,
    biometrics) when it was registered: only then may it sign in without a password.
    """

    credential_id = models.BinaryField(max_length=1023, unique=True, editable=False)
    public_key = models.BinaryField(editable=False, help_text="COSE-encoded public key.")
    sign_count = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text="The authenticator's signature counter at its last use (0: it keeps none).",
    )
    user_handle = models.BinaryField(max_length=64, editable=False)
    passwordless = models.BooleanField(
        default=False,
        editable=False,
        help_text="Registered with user verification: may sign in without a password.",
    )
    transports = models.JSONField(default=list, blank=True, editable=False)
    aaguid = models.CharField(
        "authenticator model",
        max_length=36,
        blank=True,
        editable=False,
        help_text="The AAGUID the authenticator reported (all zeros when it did not say).",
    )

    class Meta:
        verbose_name = "passkey"
        ordering = ["user", "created_at", "id"]

    def get_throttle_factor(self) -> int:
        # Failed assertions are throttled like wrong codes.
        return settings.OTP_TOTP_THROTTLE_FACTOR


class PasskeyChallenge(models.Model):
    """A WebAuthn challenge handed out and not yet expired or forgotten.

    Kept in the database, not the cache: a challenge must be refused once used, and a cache that
    lost it (Redis restarted or down) could not tell a used one from one it never saw. Only the
    challenge's SHA-256 is stored; `binding` is the digest of the session or user token that asked
    for it (empty for a passwordless sign-in over the API, where the challenge is its own id).
    """

    class Purpose(models.TextChoices):
        REGISTER = "register", "register a passkey"
        SECOND_FACTOR = "second_factor", "second factor of a known person"
        SIGN_IN = "sign_in", "passwordless sign-in"

    digest = models.CharField(max_length=64, unique=True)
    purpose = models.CharField(max_length=16, choices=Purpose.choices)
    binding = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True
    )
    user_handle = models.BinaryField(
        max_length=64, null=True, blank=True, help_text="For registration: the handle offered."
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "passkey challenge"

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.pk}"
