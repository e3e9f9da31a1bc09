"""The services that call actions: API clients and their keys."""

from django.db import models


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
        "active", default=True, help_text="Clear to revoke the key: calls with it are refused."
    )
    allowed_modules = models.JSONField(
        default=list,
        blank=True,
        help_text="Action modules this client may call; empty means all of them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "API client"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
