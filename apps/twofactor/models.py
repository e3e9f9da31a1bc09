"""Second-factor devices: authenticator apps and backup codes whose secrets the database never
holds in clear, passkeys (WebAuthn credentials) and the challenges they answer, the failure
cap, and the account's security events with the outbox of emails about them.

Why devices of our own rather than django-otp's `otp_totp` and `otp_static`: their SealedTOTPDevice
keeps its key as hex in an 80-character column, and StaticToken keeps backup codes as typed.
Encrypting in place does not fit (a Fernet token of a 20-byte key is 120 characters) and would
leave django-otp's own `bin_key`, `verify_token` and admin reading ciphertext as a key; the
upstream proposal (django-otp#67, PR #69) has stayed open since 2021. So these are django-otp
devices built from its own parts (`Device`, `ThrottlingMixin`, `TimestampMixin`, and
`django_otp.oath.TOTP` for the maths): `OTPMiddleware`, `OTPAdminSite`, `devices_for_user` and
`login` treat them like any device, while the key is a Fernet token (`sealing.py`) and a backup
code a keyed hash. Migration 0003 moves existing django-otp devices into them.
"""

from __future__ import annotations

from base64 import b32encode
from urllib.parse import quote, urlencode

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from . import sealing

# Browsers' user agents are long; a longer one is cut rather than refused.
USER_AGENT_LENGTH = 512


class SealedTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """An authenticator app (RFC 6238 TOTP), its key sealed with OTP_ENCRYPTION_KEYS.

    The fields other than the key are django-otp's SealedTOTPDevice's, with the same meaning and
    defaults: 30-second steps, 6 digits, one step of tolerance either way.
    """

    sealed_key = models.TextField(
        default=sealing.new_sealed_totp_key,
        editable=False,
        help_text=_("The secret key, encrypted with OTP_ENCRYPTION_KEYS (Fernet)."),
    )
    step = models.PositiveSmallIntegerField(default=30, help_text=_("The time step in seconds."))
    t0 = models.BigIntegerField(default=0, help_text=_("The Unix time at which steps start."))
    digits = models.PositiveSmallIntegerField(
        choices=[(6, 6), (8, 8)], default=6, help_text=_("The number of digits of a code.")
    )
    tolerance = models.PositiveSmallIntegerField(
        default=1, help_text=_("The time steps early or late a code may be.")
    )
    drift = models.SmallIntegerField(
        default=0, help_text=_("The time steps the phone's clock is known to be off.")
    )
    last_t = models.BigIntegerField(
        default=-1, help_text=_("The time step of the last accepted code; later ones only now.")
    )

    class Meta(Device.Meta):
        verbose_name = _("authenticator app")
        verbose_name_plural = _("authenticator apps")

    @cached_property
    def bin_key(self) -> bytes:
        """The key, unsealed once per loaded device (the verify path loads each device once)."""
        return sealing.unseal(self.sealed_key)

    @property
    def config_url(self) -> str:
        """otpauth://totp/<issuer>:<username>?secret=…: what the QR code carries (Google's Key
        URI format, as django-otp writes it, with OTP_TOTP_ISSUER)."""
        label = str(self.user.get_username())
        params = urlencode(
            {
                "secret": b32encode(self.bin_key),
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        issuer = (settings.OTP_TOTP_ISSUER or "").replace(":", "")
        if issuer:
            label = f"{issuer}:{label}"
            params += f"&issuer={quote(issuer)}"
        return f"otpauth://totp/{quote(label)}?{params}"

    def verify_token(self, token) -> bool:
        """django-otp's API (e.g. `match_token`), answered by the project's one verify path."""
        from .verification import CodeRefused, verify_totp

        try:
            return verify_totp(devices=[self], code=str(token)) is not None
        except CodeRefused:
            return False

    def get_throttle_factor(self) -> int:
        return settings.OTP_THROTTLE_FACTOR


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A person's set of backup codes: one-time codes for when the phone is lost.

    The codes themselves are `BackupCode` rows holding keyed hashes; they are shown once, when
    generated, and never again.
    """

    class Meta(Device.Meta):
        verbose_name = _("backup codes")
        verbose_name_plural = _("backup codes")

    def verify_token(self, token) -> bool:
        """django-otp's API, answered by the project's one verify path (the code is spent)."""
        from .verification import CodeRefused, normalize_code, verify_backup_code

        try:
            return verify_backup_code(user=self.user, code=normalize_code(str(token))) is not None
        except CodeRefused:
            return False

    def get_throttle_factor(self) -> int:
        return settings.OTP_THROTTLE_FACTOR


class BackupCode(models.Model):
    """One unused backup code, as its keyed hash (`sealing.backup_code_digest`)."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64, editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="backup_code_once_per_set")
        ]

    def __str__(self) -> str:
        return f"backup code #{self.pk}"


class SecondFactorLock(models.Model):
    """An account's consecutive failed codes, and the lock they lead to at OTP_MAX_FAILURES.

    django-otp's throttling slows guessing per device; this caps it per account, as NIST
    SP 800-63B asks. A right code clears the count; a locked account stays locked until staff
    unlock it (or, with OTP_LOCK_ALLOWS_BACKUP_CODES, the person uses a backup code).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="second_factor_lock"
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    locked_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When the failures reached OTP_MAX_FAILURES.")
    )

    class Meta:
        verbose_name = _("second-factor lock")
        verbose_name_plural = _("second-factor locks")

    def __str__(self) -> str:
        state = "locked" if self.locked_at else "not locked"
        return f"{self.user} ({state}, {self.consecutive_failures} failed codes)"

    @property
    def is_locked(self) -> bool:
        return self.locked_at is not None


class SecurityEvent(models.Model):
    """Something that happened to a person's account: a login, a failed code, a factor added.

    People see their own (`/account/security/`, `GET /api/v1/account/events`), staff everyone's.
    `details` is what helps to read the event (a device's id and kind, how someone
    re-authenticated), never a secret: no code, password, key or token. A failed login for a
    username nobody has is kept with no user (staff see it; the typed name is not kept, as
    people sometimes type their password there).
    """

    class Kind(models.TextChoices):
        LOGIN = "login", _("Logged in")
        LOGIN_FAILED = "login_failed", _("Wrong password")
        OTP_FAILED = "otp_failed", _("Wrong second-factor code")
        OTP_THROTTLED = "otp_throttled", _("Code refused: too many attempts")
        LOCKED = "locked", _("Second factor locked")
        UNLOCKED = "unlocked", _("Second factor unlocked")
        DEVICE_ADDED = "device_added", _("Second factor added")
        DEVICE_REMOVED = "device_removed", _("Second factor removed")
        PASSKEY_ADDED = "passkey_added", _("Passkey added")
        PASSKEY_REMOVED = "passkey_removed", _("Passkey removed")
        PASSKEY_CLONE_SUSPECTED = "passkey_clone_suspected", _("Passkey refused: it may be a copy")
        BACKUP_CODES_GENERATED = "backup_codes_generated", _("New backup codes")
        BACKUP_CODE_USED = "backup_code_used", _("Backup code used")
        PASSWORD_CHANGED = "password_changed", _("Password changed")
        PASSWORD_RESET = "password_reset", _("Password reset")
        REAUTHENTICATED = "reauthenticated", _("Confirmed it was you")
        TOKEN_ISSUED = "token_issued", _("App signed in")
        TOKEN_REVOKED = "token_revoked", _("App signed out")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="security_events",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True, help_text=_("The client's address."))
    user_agent = models.CharField(max_length=USER_AGENT_LENGTH, blank=True)
    request_id = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at", "-id"], name="security_event_user_at")]

    def __str__(self) -> str:
        return f"{self.kind} ({self.user_id}, {self.at:%Y-%m-%d %H:%M:%S})"


class SecurityNotification(models.Model):
    """An email to send about a security event: the outbox row written in the event's
    transaction, so a mail is sent only for what was committed, and none is lost when the mail
    server is down (it stays pending until `manage.py send_pending_notifications` sends it)."""

    event = models.OneToOneField(
        SecurityEvent, on_delete=models.CASCADE, related_name="notification"
    )
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(
        max_length=200, blank=True, help_text=_("Why the last attempt failed (no secret).")
    )
    # Kept so that the mail reads the same whether it goes out at once or from the command.
    language = models.CharField(
        max_length=16,
        blank=True,
        editable=False,
        help_text=_(
            "The language the mail is written in: the one of the request that caused it "
            "(empty: LANGUAGE_CODE)."
        ),
    )

    class Meta:
        verbose_name = _("security notification")
        verbose_name_plural = _("security notifications")
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"notification of {self.event}"

    @property
    def is_pending(self) -> bool:
        return self.sent_at is None


class Passkey(TimestampMixin, ThrottlingMixin, Device):
    """A passkey registered by a person: a django-otp device, so it counts as a confirmed second
    factor wherever a TOTP device does (`OTPMiddleware`, `OTPAdminSite`, `user_has_device`).

    It holds no secret: the private key never leaves the authenticator; the public key checks
    its signatures. `passwordless` records whether the authenticator verified the person (PIN,
    biometrics) when it was registered: only then may it sign in without a password.
    """

    credential_id = models.BinaryField(max_length=1023, unique=True, editable=False)
    public_key = models.BinaryField(editable=False, help_text=_("COSE-encoded public key."))
    sign_count = models.PositiveBigIntegerField(
        default=0,
        editable=False,
        help_text=_("The authenticator's signature counter at its last use (0: it keeps none)."),
    )
    user_handle = models.BinaryField(max_length=64, editable=False)
    passwordless = models.BooleanField(
        default=False,
        editable=False,
        help_text=_("Registered with user verification: may sign in without a password."),
    )
    transports = models.JSONField(default=list, blank=True, editable=False)
    aaguid = models.CharField(
        _("authenticator model"),
        max_length=36,
        blank=True,
        editable=False,
        help_text=_("The AAGUID the authenticator reported (all zeros when it did not say)."),
    )

    class Meta:
        verbose_name = _("passkey")
        verbose_name_plural = _("passkeys")
        ordering = ["user", "created_at", "id"]

    def get_throttle_factor(self) -> int:
        # Failed assertions are throttled like wrong codes.
        return settings.OTP_THROTTLE_FACTOR


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
        max_length=64, null=True, blank=True, help_text=_("For registration: the handle offered.")
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("passkey challenge")
        verbose_name_plural = _("passkey challenges")

    def __str__(self) -> str:
        return f"{self.purpose} challenge {self.pk}"


class TrustedBrowser(models.Model):
    """A browser a person trusted at the code step of a login: after the password, it skips that
    step until `expires_at` (TWO_FACTOR_TRUST_DAYS), unless revoked.

    The browser holds a random secret in a signed cookie; only its SHA-256 is stored, as for user
    tokens, so a database dump trusts no browser. The trust was given by one second factor
    (`device`, django-otp's persistent id): a session it opens is verified by that device, and it
    ends with that device, so removing a factor (or the last one) also removes what it vouched for.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trusted_browsers"
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    device = models.CharField(
        _("second factor"),
        max_length=255,
        editable=False,
        help_text=_("The device whose code (or passkey) the browser was trusted with."),
    )
    user_agent = models.CharField(max_length=USER_AGENT_LENGTH, blank=True, editable=False)
    created_at = models.DateTimeField(editable=False)
    last_used_at = models.DateTimeField(editable=False)
    expires_at = models.DateTimeField(db_index=True, editable=False)

    class Meta:
        verbose_name = _("trusted browser")
        verbose_name_plural = _("trusted browsers")
        ordering = ["-last_used_at", "-id"]

    def __str__(self) -> str:
        return f"trusted browser #{self.pk} ({self.user_id})"
