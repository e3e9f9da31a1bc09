"""Emails that tell a person about a change to their account's security, from the outbox.

`events.record` writes a `SecurityNotification` with the event, in its transaction, and asks for
it to be delivered once that transaction commits: a mail never announces what was rolled back.
A mail server that is down or slow (EMAIL_TIMEOUT) never fails the request that recorded the
event: the failure is logged (the error's class, never the message's content), the row stays
pending, and `manage.py send_pending_notifications` sends what is pending.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from .models import SecurityEvent, SecurityNotification

logger = logging.getLogger(__name__)

Kind = SecurityEvent.Kind

# What each notified kind says happened, and what to do if it was not the person.
NOTIFIED_KINDS = {
    Kind.DEVICE_ADDED: (
        _("A second factor was added to your account."),
        _(
            "If this was not you, someone knows your password: change it now, remove the new "
            "factor on the two-factor page, and tell us."
        ),
    ),
    Kind.DEVICE_REMOVED: (
        _("A second factor was removed from your account."),
        _(
            "If this was not you, change your password now, add your authenticator again on the "
            "two-factor page, and tell us."
        ),
    ),
    # A passkey is a factor like an authenticator: mailed about as one (issue #18).
    Kind.PASSKEY_ADDED: (
        _("A passkey was added to your account."),
        _(
            "If this was not you, someone may be able to sign in as you: change your password "
            "now, remove the new passkey on the two-factor page, and tell us."
        ),
    ),
    Kind.PASSKEY_REMOVED: (
        _("A passkey was removed from your account."),
        _(
            "If this was not you, change your password now, check your second factors on the "
            "two-factor page, and tell us."
        ),
    ),
    Kind.BACKUP_CODES_GENERATED: (
        _("New backup codes were made for your account; the old ones no longer work."),
        _(
            "If this was not you, change your password now, make new backup codes on the "
            "two-factor page, and tell us."
        ),
    ),
    Kind.BACKUP_CODE_USED: (
        _("A backup code was used to sign in to your account."),
        _(
            "If this was not you, someone has your password and one of your backup codes: change "
            "your password, make new backup codes, and tell us."
        ),
    ),
    Kind.PASSWORD_CHANGED: (
        _("The password of your account was changed."),
        _("If this was not you, reset your password now and tell us."),
    ),
    Kind.PASSWORD_RESET: (
        _("The password of your account was reset."),
        _("If this was not you, reset your password again now and tell us."),
    ),
    Kind.LOCKED: (
        _("Your account's second factor was locked after too many wrong codes in a row."),
        _(
            "If this was not you, someone knows your password and is guessing codes: change "
            "your password and ask us to unlock your account."
        ),
    ),
}


@dataclass(frozen=True)
class Delivery:
    """What `send_pending` did: mails sent, and mails that stay pending."""

    sent: int
    failed: int


def is_notified(event: SecurityEvent) -> bool:
    """Whether the person is told about this event: a notified kind, and an address to tell."""
    return event.kind in NOTIFIED_KINDS and event.user is not None and bool(event.user.email)


def deliver(*, notification_id: int) -> bool:
    """Send one pending notification; whether it was sent (now, by this call).

    The row is locked while its mail is sent, and one being sent elsewhere is skipped, so a mail
    goes out once even when the command runs while a request delivers.
    """
    with transaction.atomic():
        notification = (
            SecurityNotification.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("event__user")
            .filter(pk=notification_id, sent_at__isnull=True)
            .first()
        )
        if notification is None:
            return False
        if not is_notified(notification.event):
            # The address was removed since: there is no one to tell, and retrying cannot help.
            notification.delete()
            return False
        try:
            with translation.override(notification.language or settings.LANGUAGE_CODE):
                message = _message(notification.event)
            message.send()
        except Exception as exc:  # a mail server that is down must not fail the request
            notification.attempts += 1
            notification.last_error = type(exc).__name__[:200]
            notification.save(update_fields=["attempts", "last_error"])
            logger.warning(
                "Security notification not sent; it stays pending",
                extra={
                    "notification_id": notification.pk,
                    "event": notification.event.kind,
                    "error": notification.last_error,
                },
            )
            return False
        notification.attempts += 1
        notification.sent_at = timezone.now()
        notification.last_error = ""
        notification.save(update_fields=["attempts", "sent_at", "last_error"])
    return True


def send_pending() -> Delivery:
    """Send every pending notification, oldest first (the command's job)."""
    pending = SecurityNotification.objects.filter(sent_at__isnull=True).order_by("created_at", "id")
    sent = failed = 0
    for notification_id in pending.values_list("pk", flat=True).iterator():
        if deliver(notification_id=notification_id):
            sent += 1
        elif SecurityNotification.objects.filter(pk=notification_id, sent_at__isnull=True).exists():
            failed += 1
    return Delivery(sent=sent, failed=failed)


def _message(event: SecurityEvent) -> EmailMessage:
    """The mail about `event`: what happened, when, from which address, what to do if it was
    not them."""
    happened, advice = NOTIFIED_KINDS[event.kind]
    context = {
        "event": event,
        "person": event.user,
        "happened": happened,
        "advice": advice,
        "at": timezone.localtime(event.at),
        "site_name": settings.OTP_TOTP_ISSUER,
    }
    subject = render_to_string("twofactor/email/security_event_subject.txt", context)
    body = render_to_string("twofactor/email/security_event_body.txt", context)
    return EmailMessage(
        subject=" ".join(subject.split()),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[event.user.email],
    )
