"""Security events: the one place a change to a person's second factor is recorded.

For now a record is a JSON log line (`event`, `user_id`, and details that are never secrets),
which staff can search. The kinds are the slugs the security-event log and its emails will use
(`locked`, `unlocked`, `device_added`, `device_removed`, `backup_codes_generated`,
`backup_code_used`, `reauthenticated`), so that log is written here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

from apps.accounts.models import User

logger = logging.getLogger(__name__)

KINDS = frozenset(
    {
        "locked",
        "unlocked",
        "device_added",
        "device_removed",
        "backup_codes_generated",
        "backup_code_used",
        "reauthenticated",
        "password_changed",
        "password_reset",
    }
)


def record(kind: str, *, user: User, **detail: Any) -> None:
    """Record that `kind` happened to `user`'s second factor; `detail` must hold no secret."""
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    logger.info("Security event: %s", kind, extra={"event": kind, "user_id": user.pk, **detail})
