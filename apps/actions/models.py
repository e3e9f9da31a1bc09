"""The services that call actions (API clients and their keys), and the answers kept for
their Idempotency-Keys."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .rates import validate_rate


class ApiClient(models.Model):
    """A service (or the mobile app) that calls the API with a bearer key.

    Only a SHA-256 digest of the key is stored: keys are 256-bit random strings, so a fast hash
    is as safe as a slow one and costs nothing per call. The key's first characters (its prefix)
    are stored in clear to find the row, and shown in the admin to tell keys apart.
    """

    name = models.CharField(max_length=100, unique=True)
    key_prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    is_active = models.BooleanField(
        _("active"),
        default=True,
        help_text=_("Clear to revoke the key: calls with it are refused."),
    )
    allowed_modules = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Action modules this client may call; empty means all of them."),
    )
    rate = models.CharField(
        max_length=32,
        blank=True,
        validators=[validate_rate],
        help_text=_(
            "Calls allowed per period, e.g. 100/s or 6000/min; empty: ACTIONS_DEFAULT_RATE."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IdempotencyRecord(models.Model):
    """The answer of a call made with an Idempotency-Key, kept so that a repeat gets it back.

    Written in the same transaction as the call's own writes, on the same database, so the two
    are committed together or not at all. `client_id` is not a foreign key: the record lives on
    the action's database, which need not be the one holding the API clients.
    """

    client_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(
        max_length=64, help_text=_("SHA-256 of the call (module, action, input) it answered.")
    )
    status = models.PositiveSmallIntegerField()
    body = models.BinaryField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "key"], name="idempotency_client_key")
        ]

    def __str__(self) -> str:
        return f"{self.client_id}: {self.key}"
