"""A real SMTP server for tests (aiosmtpd on a free loopback port), and Django's mail settings
pointed at it the way production sets them: an EMAIL_URL read by django-environ."""

from __future__ import annotations

import contextlib
import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage

import environ
from aiosmtpd.controller import Controller


class Inbox:
    """What the server received: each message parsed, with its envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd's handler hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._arrived:
            self.messages.append(message)
            self.recipients.append(list(envelope.rcpt_tos))
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, count: int, timeout: float = 10) -> list[EmailMessage]:
        """The first `count` messages, waiting (on their arrival, not a clock) for them."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout)
            return list(self.messages)


@contextlib.contextmanager
def smtp_server(port: int | None = None) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1 and a free port (or `port`, one the settings already name),
    for the block: (its inbox, its port)."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port or free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def free_port() -> int:
    """A loopback port nothing listens on (a mail server that is down, until one binds it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def use_email_url(settings, url: str) -> None:
    """Django's mail settings from `url`, as config/settings.py reads EMAIL_URL."""
    for name, value in environ.Env.email_url_config(url).items():
        setattr(settings, name, value)
    settings.EMAIL_TIMEOUT = 5
