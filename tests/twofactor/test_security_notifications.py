"""A person is mailed when their account's security changes: received by a real SMTP server the
test starts (aiosmtpd on a free loopback port), sent once the event's transaction committed, and
a mail server that is down never fails the request (the mail waits for
`manage.py send_pending_notifications`)."""

from __future__ import annotations

import logging
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import RequestFactory

from apps.twofactor import events
from apps.twofactor.models import Passkey, SealedTOTPDevice, SecurityEvent, SecurityNotification
from tests.mail import free_port, smtp_server, use_email_url

from .authenticator import SoftAuthenticator
from .conftest import (
    PASSWORD,
    bearer,
    code_for,
    make_backup_codes,
    make_device,
    make_person,
    wrong_code,
)

# Real transactions: the mail goes out when one commits, which the test's wrapping one never does.
pytestmark = pytest.mark.django_db(transaction=True)

EMAIL = "alice@example.com"
AGENT = "Phone/2.0 (notifications)"


@pytest.fixture
def person():
    return make_person(email=EMAIL)


@pytest.fixture
def inbox(settings):
    """A mail server that is up, and Django sending to it through EMAIL_URL."""
    with smtp_server() as (inbox, port):
        use_email_url(settings, f"smtp://127.0.0.1:{port}")
        yield inbox


def api(client, method, path, token=None, body=None):
    kwargs = {"headers": {"User-Agent": AGENT, **(bearer(token) if token else {})}}
    if body is not None:
        kwargs.update(data=body, content_type="application/json")
    return getattr(client, method)(path, **kwargs)


def token_for(client) -> str:
    response = api(
        client, "post", "/api/v1/auth/token", body={"username": "alice", "password": PASSWORD}
    )
    return response.json()["token"]


# Each notified kind, by its action on the API (the passwords' kinds are recorded by the password
# pages, which call events.record as below).


def add_authenticator(client, person) -> None:
    token = token_for(client)
    created = api(client, "post", "/api/v1/otp/devices", token, {}).json()
    device = SealedTOTPDevice.objects.get(pk=created["id"])
    confirm = f"/api/v1/otp/devices/{device.pk}/confirm"
    assert api(client, "post", confirm, token, {"token": code_for(device)}).json()["status"]


def remove_authenticator(client, person) -> None:
    device = make_device(person)
    token = token_for(client)
    assert api(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device)}).json()[
        "status"
    ]
    spare = make_device(person, name="Spare")
    assert api(client, "delete", f"/api/v1/otp/devices/{spare.pk}", token).status_code == 204


def add_a_passkey(client, person) -> None:
    token = token_for(client)
    options = api(client, "post", "/api/v1/passkeys/register/options", token).json()
    answer = SoftAuthenticator().create(options)
    assert api(client, "post", "/api/v1/passkeys/register", token, answer).status_code == 201


def remove_a_passkey(client, person) -> None:
    device = make_device(person)
    token = token_for(client)
    assert api(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device)}).json()[
        "status"
    ]
    passkey = Passkey.objects.create(  # as registered, without its own event
        user=person, name="Laptop", confirmed=True, credential_id=b"id", public_key=b"key"
    )
    assert api(client, "delete", f"/api/v1/passkeys/{passkey.pk}", token).status_code == 204


def generate_backup_codes(client, person) -> None:
    device = make_device(person)
    token = token_for(client)
    api(client, "post", "/api/v1/otp/verify", token, {"token": code_for(device)})
    assert api(client, "post", "/api/v1/otp/backup-codes", token, {}).status_code == 201


def use_a_backup_code(client, person) -> None:
    make_device(person)
    make_backup_codes(person, ["abcd2345"])
    token = token_for(client)
    assert api(client, "post", "/api/v1/otp/verify", token, {"token": "abcd2345"}).json()["status"]


def lock_the_second_factor(client, person) -> None:
    device = make_device(person)
    token = token_for(client)
    api(client, "post", "/api/v1/otp/verify", token, {"token": wrong_code(device)})


def change_the_password(client, person) -> None:
    request = RequestFactory().post("/account/password/", HTTP_USER_AGENT=AGENT)
    events.record("password_changed", user=person, request=request)


def reset_the_password(client, person) -> None:
    request = RequestFactory().post("/account/password/reset/", HTTP_USER_AGENT=AGENT)
    events.record("password_reset", user=person, request=request)


ACTIONS = {
    "device_added": (add_authenticator, "A second factor was added to your account."),
    "device_removed": (remove_authenticator, "A second factor was removed from your account."),
    "passkey_added": (add_a_passkey, "A passkey was added to your account."),
    "passkey_removed": (remove_a_passkey, "A passkey was removed from your account."),
    "backup_codes_generated": (generate_backup_codes, "New backup codes were made"),
    "backup_code_used": (use_a_backup_code, "A backup code was used"),
    "locked": (lock_the_second_factor, "second factor was locked"),
    "password_changed": (change_the_password, "The password of your account was changed."),
    "password_reset": (reset_the_password, "The password of your account was reset."),
}


@pytest.mark.parametrize("kind", sorted(ACTIONS))
def test_each_notified_kind_mails_the_person(client, person, inbox, settings, kind):
    settings.OTP_MAX_FAILURES = 1
    settings.OTP_THROTTLE_FACTOR = 0
    action, happened = ACTIONS[kind]

    action(client, person)

    (message,) = inbox.wait_for(1)
    event = SecurityEvent.objects.get(user=person, kind=kind)
    assert message["To"] == EMAIL
    assert message["From"] == settings.DEFAULT_FROM_EMAIL
    assert happened in message["Subject"]
    body = message.get_content()
    assert happened in body
    assert re.search(rf"When: .*{event.at.year}.* \(UTC\)", body)
    assert "From the address: 127.0.0.1" in body
    assert f"Browser or app: {AGENT}" in body
    assert "If this was not you" in body
    assert "/account/security/" in body
    notification = SecurityNotification.objects.get(event=event)
    assert (notification.is_pending, notification.attempts) == (False, 1)
    assert len(inbox.wait_for(1)) == 1  # no other mail for the other events of the action


def test_events_not_notified_send_nothing(client, person, inbox):
    token_for(client)
    api(client, "post", "/api/v1/auth/token", body={"username": "alice", "password": "wrong"})
    assert not SecurityNotification.objects.exists()
    assert inbox.messages == []


def test_a_person_without_an_address_gets_no_notification(inbox):
    events.record("password_changed", user=make_person("bob"))  # no email
    assert not SecurityNotification.objects.exists()
    assert inbox.messages == []


def test_a_pending_mail_whose_address_was_removed_is_dropped(person, settings):
    use_email_url(settings, f"smtp://127.0.0.1:{free_port()}")  # down
    events.record("password_changed", user=person)
    assert SecurityNotification.objects.get().is_pending
    person.email = ""
    person.save()
    call_command("send_pending_notifications", stdout=StringIO())  # nothing left to fail
    assert not SecurityNotification.objects.exists()
    assert SecurityEvent.objects.filter(kind="password_changed").exists()


def test_nothing_is_sent_for_an_event_rolled_back(person, inbox):
    def change_that_fails() -> None:
        with transaction.atomic():
            events.record("password_changed", user=person)
            raise RuntimeError("the change failed after the event was written")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert not SecurityEvent.objects.exists()
    assert not SecurityNotification.objects.exists()
    events.record("password_reset", user=person)  # the server was there all along
    (message,) = inbox.wait_for(1)
    assert "reset" in message["Subject"]


def test_a_mail_server_that_is_down_never_fails_the_request(client, person, settings, caplog):
    port = free_port()  # nothing listens there: connections are refused
    use_email_url(settings, f"smtp://127.0.0.1:{port}")
    make_device(person)
    make_backup_codes(person, ["abcd2345"])
    token = token_for(client)

    with caplog.at_level(logging.WARNING, logger="apps.twofactor.notifications"):
        response = api(client, "post", "/api/v1/otp/verify", token, {"token": "abcd2345"})

    assert response.status_code == 200
    assert response.json() == {"status": True}
    notification = SecurityNotification.objects.get()
    assert notification.is_pending
    assert notification.attempts == 1
    assert notification.last_error == "ConnectionRefusedError"
    (record,) = [r for r in caplog.records if r.name == "apps.twofactor.notifications"]
    assert record.notification_id == notification.pk
    logged = str(record.__dict__)
    for secret in ("abcd2345", PASSWORD, token):
        assert secret not in logged

    # Still down: the command says so and the mail stays pending.
    with pytest.raises(CommandError, match="1 notification"):
        call_command("send_pending_notifications", stdout=StringIO())
    notification.refresh_from_db()
    assert (notification.is_pending, notification.attempts) == (True, 2)

    # The server is back on its port: the command sends what is pending, once.
    with smtp_server(port) as (inbox, _):
        out = StringIO()
        call_command("send_pending_notifications", stdout=out)
        assert out.getvalue() == "Sent 1 pending notification(s).\n"
        (message,) = inbox.wait_for(1)
        assert "A backup code was used" in message["Subject"]
        assert message["To"] == EMAIL
        again = StringIO()
        call_command("send_pending_notifications", stdout=again)
        assert again.getvalue() == "Sent 0 pending notification(s).\n"
        assert len(inbox.messages) == 1
    notification.refresh_from_db()
    assert not notification.is_pending
    assert notification.last_error == ""
