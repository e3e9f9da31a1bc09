"""Migration 0003 seals the secrets of devices enrolled with django-otp's own models: run from the
old state with Django's migration executor, then used through the API as before."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pyotp
import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.accounts.tokens import issue_user_token
from apps.twofactor.models import BackupCode, BackupCodeDevice, SealedTOTPDevice

from .conftest import PASSWORD, bearer

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("twofactor", "0002_sealed_second_factor")]
# The apps 0003 reads from, as they stood then.
OLD_APPS = [*BEFORE, ("otp_totp", "0003_add_timestamps"), ("otp_static", "0003_add_timestamps")]
SEALED = [("twofactor", "0003_seal_django_otp_secrets")]
KEY = bytes(range(1, 21))  # the 20-byte key a phone enrolled with before the migration
ENROLLED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)  # reloaded: the graph as it now stands


@pytest.fixture
def old_state():
    """The database before 0003, with the apps as they were then; every app migrated back to
    its latest state afterwards."""
    executor = migrate(BEFORE)
    yield executor.loader.project_state(OLD_APPS).apps
    migrate(executor.loader.graph.leaf_nodes())  # a fresh executor: a test may have moved on


def verify(client, token, code):
    response = client.post(
        "/api/v1/otp/verify",
        {"token": code},
        content_type="application/json",
        headers=bearer(token),
    )
    return response.json()


def test_devices_enrolled_before_keep_working_with_their_secrets_sealed(
    old_state, client, settings
):
    settings.OTP_THROTTLE_FACTOR = 0  # the replay below must not delay the next code
    User = old_state.get_model("accounts", "User")
    PlainTOTPDevice = old_state.get_model("otp_totp", "TOTPDevice")
    StaticDevice = old_state.get_model("otp_static", "StaticDevice")
    StaticToken = old_state.get_model("otp_static", "StaticToken")
    person = User.objects.create(username="alice", password=make_password(PASSWORD))
    phone = pyotp.TOTP(base64.b32encode(KEY).decode("ascii"))
    used_step = int(time.time()) // 30
    plain = PlainTOTPDevice.objects.create(
        user=person, name="Old phone", key=KEY.hex(), confirmed=True, last_t=used_step, drift=0
    )
    PlainTOTPDevice.objects.filter(pk=plain.pk).update(created_at=ENROLLED_AT)
    static = StaticDevice.objects.create(user=person, name="Backup codes", confirmed=True)
    StaticToken.objects.create(device=static, token="abcd2345")
    StaticToken.objects.create(device=static, token="EFGH 6723")

    migrate(SEALED)

    assert not PlainTOTPDevice.objects.exists()
    assert not StaticDevice.objects.exists()
    assert not StaticToken.objects.exists()
    device = SealedTOTPDevice.objects.get()
    assert (device.user_id, device.name, device.confirmed) == (person.pk, "Old phone", True)
    assert device.created_at == ENROLLED_AT
    assert device.bin_key == KEY
    assert KEY.hex() not in device.sealed_key
    digests = set(BackupCode.objects.values_list("digest", flat=True))
    assert len(digests) == 2
    assert not {"abcd2345", "efgh6723", "EFGH 6723"} & digests
    assert BackupCodeDevice.objects.get().user_id == person.pk

    # Used through the API as it is now: the later migrations (security events) too.
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    token = issue_user_token(user=device.user).key
    now = time.time()
    assert verify(client, token, phone.at(now)) == {"status": False}  # its step was used before
    assert verify(client, token, phone.at(now + 30)) == {"status": True}
    assert verify(client, token, "efgh-6723") == {"status": True}  # as typed before, normalized


def test_going_back_restores_the_plain_keys(old_state):
    User = old_state.get_model("accounts", "User")
    PlainTOTPDevice = old_state.get_model("otp_totp", "TOTPDevice")
    person = User.objects.create(username="bob")
    PlainTOTPDevice.objects.create(user=person, name="Phone", key=KEY.hex(), confirmed=True)
    migrate(SEALED)
    executor = migrate(BEFORE)
    restored = executor.loader.project_state(OLD_APPS).apps.get_model("otp_totp", "TOTPDevice")
    assert list(restored.objects.values_list("key", "name")) == [(KEY.hex(), "Phone")]
