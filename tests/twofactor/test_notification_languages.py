"""A security mail speaks the language of the page whose action caused it (Accept-Language), as
received by a real SMTP server, also when it goes out later from `send_pending_notifications`;
an action with no language asked for mails in English."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_otp import DEVICE_ID_SESSION_KEY

from apps.twofactor.models import SecurityNotification
from tests.mail import free_port, smtp_server, use_email_url

from .conftest import make_device, make_person, mark_reauthenticated

# Real transactions: the mail goes out when one commits, which the test's wrapping one never does.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inbox(settings):
    with smtp_server() as (inbox, port):
        use_email_url(settings, f"smtp://127.0.0.1:{port}")
        yield inbox


def new_backup_codes(client, **headers: str) -> None:
    """The backup-codes page's button, by a person logged in with their authenticator."""
    person = make_person(email="alice@example.com")
    device = make_device(person)
    client.force_login(person)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    mark_reauthenticated(session)
    session.save()
    response = client.post("/account/two-factor/backup-codes/", headers=headers)
    assert response.status_code == 302


SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}


def test_the_mail_of_a_spanish_page_is_in_spanish(client, inbox):
    new_backup_codes(client, **SPANISH)
    [mail] = inbox.wait_for(1)
    # A long non-ASCII subject is folded into encoded words from its first line on, which
    # Python's parser reads back with the fold's space in front.
    assert mail["Subject"].strip() == (
        "dbapi: Se han generado códigos de respaldo nuevos para tu cuenta; los anteriores ya no "
        "sirven."
    )
    body = mail.get_content()
    assert body.startswith("Hola, alice:")
    assert "Cuándo: " in body
    assert "Si has sido tú, no tienes que hacer nada." in body
    assert "If this was" not in body


def test_the_mail_of_a_page_without_a_language_is_in_english(client, inbox):
    new_backup_codes(client)
    [mail] = inbox.wait_for(1)
    assert mail["Subject"] == (
        "dbapi: New backup codes were made for your account; the old ones no longer work."
    )
    assert mail.get_content().startswith("Hello alice,")


def test_a_mail_sent_later_keeps_the_language_of_its_page(client, settings):
    """The mail server is down while the Spanish page is answered; the command, which runs in no
    request's language, sends the mail in Spanish once a server answers."""
    port = free_port()
    use_email_url(settings, f"smtp://127.0.0.1:{port}")
    new_backup_codes(client, **SPANISH)
    notification = SecurityNotification.objects.get()
    assert (notification.sent_at, notification.language) == (None, "es")
    with smtp_server(port) as (inbox, _):
        call_command("send_pending_notifications", stdout=StringIO())
        [mail] = inbox.wait_for(1)
    assert mail.get_content().startswith("Hola, alice:")
