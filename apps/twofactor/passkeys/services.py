"""Managing passkeys (rename, remove) and the one place their security events are recorded.

Registering is in `registration.py`, checking assertions in `authentication.py`; what they have in
common with the library's parsing is in `answers.py`.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest

from .. import events
from ..models import Passkey

logger = logging.getLogger(__name__)

DEFAULT_PASSKEY_NAME = "Passkey"


def rename_passkey(*, passkey: Passkey, name: str) -> Passkey:
    passkey.name = name.strip()[:64] or DEFAULT_PASSKEY_NAME
    passkey.save(update_fields=["name"])
    return passkey


def remove_passkey(
    *, passkey: Passkey, request: HttpRequest | None = None, by: str | None = None
) -> None:
    """Remove a passkey: its assertions are refused from now on. Callers check a second factor
    first. `by` is "staff" when staff removed it in the admin (the event says so)."""
    passkey_id = passkey.pk
    passkey.delete()
    passkey.pk = passkey_id  # for the record
    detail = {"by": by} if by else {}
    record_passkey_event("passkey_removed", passkey=passkey, request=request, **detail)


def record_passkey_event(
    kind: str, *, passkey: Passkey, request: HttpRequest | None = None, **detail: Any
) -> None:
    """The one place a passkey's event is recorded (`passkey_added`, `passkey_removed`,
    `passkey_clone_suspected`): a security event for its owner, in `request` when given, with
    the passkey's row id (the person is mailed about the first two, as for any factor), and a
    log line, a warning for a suspected clone. Never the credential id or the public key."""
    log = logger.warning if kind == "passkey_clone_suspected" else logger.info
    log("Passkey event: %s", kind, extra={"user_id": passkey.user_id, "passkey_id": passkey.pk})
    events.record(
        kind,
        user=passkey.user,
        request=request,
        device_id=passkey.pk,
        device_kind="passkey",
        **detail,
    )
