"""Managing passkeys (rename, remove) and the one place their security events are recorded.

Registering is in `registration.py`, checking assertions in `authentication.py`; what they have in
common with the library's parsing is in `answers.py`.
"""

from __future__ import annotations

import logging

from ..models import Passkey

logger = logging.getLogger(__name__)

DEFAULT_PASSKEY_NAME = "Passkey"


def rename_passkey(*, passkey: Passkey, name: str) -> Passkey:
    passkey.name = name.strip()[:64] or DEFAULT_PASSKEY_NAME
    passkey.save(update_fields=["name"])
    return passkey


def remove_passkey(*, passkey: Passkey) -> None:
    """Remove a passkey: its assertions are refused from now on. Callers check a second factor
    first."""
    passkey_id = passkey.pk
    passkey.delete()
    passkey.pk = passkey_id  # for the record
    record_passkey_event("passkey_removed", passkey=passkey)


def record_passkey_event(kind: str, *, passkey: Passkey) -> None:
    """The one place a passkey's security event is recorded (`passkey_added`, `passkey_removed`,
    `passkey_clone_suspected`): a log line until security events exist. Never the credential
    id or the public key."""
    log = logger.warning if kind == "passkey_clone_suspected" else logger.info
    log("Passkey event: %s", kind, extra={"user_id": passkey.user_id, "passkey_id": passkey.pk})
