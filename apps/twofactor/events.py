"""Security events: the one place something that happened to a person's account is recorded.

A record is a `SecurityEvent` row (who, what, when, from which address and browser, in which
request) and a JSON log line with the same facts, which staff can search beside the request's
other lines. For the kinds a person is told about by email (`notifications.NOTIFIED_KINDS`), an
outbox row is written in the same transaction, with the request's language (a page's, from
Accept-Language; the API's is LANGUAGE_CODE), and the mail is sent once that transaction commits.

`detail` must never hold a secret: no code, password, key or token (the names those usually go by
are refused outright, so a slip fails loudly in tests rather than landing in the table).
"""

from __future__ import annotations

import ipaddress
import logging
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone, translation

from apps.accounts.models import User
from apps.core.client_address import client_address
from apps.core.request_id import get_request_id

from . import notifications
from .models import USER_AGENT_LENGTH, SecurityEvent, SecurityNotification

logger = logging.getLogger(__name__)

Kind = SecurityEvent.Kind
KINDS = frozenset(Kind.values)

# Detail keys that would name a secret; a typo-proof guard, not the only one (callers pass ids).
SECRET_NAMES = frozenset(
    {"code", "codes", "password", "token", "key", "secret", "otp_token", "credential"}
)


def record(
    kind: str, *, user: User | None, request: HttpRequest | None = None, **detail: Any
) -> SecurityEvent:
    """Record that `kind` happened to `user`'s account, in `request` when there is one (its
    client address, user agent and id); `detail` must hold no secret.

    `user` is None only for a failed login with a username nobody has.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown security event kind {kind!r}")
    leaked = SECRET_NAMES.intersection(detail)
    if leaked:
        raise ValueError(f"security event details must hold no secret: {sorted(leaked)}")
    meta = request.META if request is not None else {}
    event = SecurityEvent(
        user=user,
        kind=kind,
        ip=_ip(client_address(meta)) if request is not None else None,
        user_agent=meta.get("HTTP_USER_AGENT", "")[:USER_AGENT_LENGTH],
        request_id=(getattr(request, "id", None) or get_request_id() or "")[:128],
        details=detail,
    )
    with transaction.atomic():
        event.save()
        if notifications.is_notified(event):
            notification = SecurityNotification.objects.create(
                event=event, language=translation.get_language() or ""
            )
            transaction.on_commit(lambda: notifications.deliver(notification_id=notification.pk))
    logger.info(
        "Security event: %s",
        kind,
        extra={"event": kind, "user_id": user.pk if user else None, "ip": event.ip, **detail},
    )
    return event


def _ip(address: str) -> str | None:
    """The address as the column takes it; None when it is not an IP (a Unix socket's peer)."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def prune(*, older_than: timedelta, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete the events (and their notifications) older than `older_than`; how many events.

    In batches, each its own transaction, so a large first prune neither holds locks long nor
    builds one huge delete."""
    cutoff = (now or timezone.now()) - older_than
    deleted = 0
    while True:
        batch = list(
            SecurityEvent.objects.filter(at__lt=cutoff).values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return deleted
        with transaction.atomic():
            _, per_model = SecurityEvent.objects.filter(pk__in=batch).delete()
        deleted += per_model.get(SecurityEvent._meta.label, 0)
