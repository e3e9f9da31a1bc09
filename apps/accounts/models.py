"""People who log in. The custom User exists from the first migration so it can grow later."""

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person: staff in the admin, or a user of the mobile app and the browser pages."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class UserToken(models.Model):
    """A person's bearer token for the mobile API, from `POST /api/v1/auth/token`.

    Only a SHA-256 digest of the token is stored: tokens are 256-bit random strings, so a fast
    hash is enough, as for API client keys. A token expires, is revoked by deleting it, and is
    *verified* once a second factor was checked with it; endpoints that need two factors refuse
    it before. Sensitive changes also need the password or a code entered with it recently
    (`reauthenticated_at`).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    digest = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=8, editable=False, help_text=_("The token's first characters, to tell it apart.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    verified_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("When a second factor was checked with this token; empty: password only."),
    )
    reauthenticated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_(
            "When the password or a code was last entered with this token (from its "
            "issue with the password on); sensitive changes need it to be recent."
        ),
    )

    class Meta:
        verbose_name = _("user token")
        verbose_name_plural = _("user tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.key_prefix}… ({self.user_id})"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None
