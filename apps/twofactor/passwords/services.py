"""Setting a new password, and ending everything the old one opened.

Other sessions end by Django's own check: every session keeps a hash derived from the password
hash (`get_session_auth_hash`), and one that no longer matches is flushed at its next request; a
login waiting for its code step is refused the same way (`views.code_step_user`). User tokens
and trusted browsers are rows, so they are deleted here.
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from apps.accounts.models import User
from apps.accounts.tokens import revoke_user_tokens

from .. import events
from ..trusted_browsers.services import revoke_trusted_browsers


def change_password(*, user: User, password: str, request: HttpRequest | None = None) -> None:
    """The person chose a new password (the old one checked by the caller), in `request`."""
    _set_password(user=user, password=password, request=request, kind="password_changed")


def reset_password(*, user: User, password: str, request: HttpRequest | None = None) -> None:
    """A new password through a reset link from the person's email. It logs nobody in: the next
    login asks for the second factor, no trusted browser being left to skip it."""
    _set_password(user=user, password=password, request=request, kind="password_reset")


def _set_password(*, user: User, password: str, request: HttpRequest | None, kind: str) -> None:
    """The new password, the revocations and the event (and its email) commit together."""
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        revoke_user_tokens(user=user, request=request)
        revoke_trusted_browsers(user=user)
        events.record(kind, user=user, request=request)
