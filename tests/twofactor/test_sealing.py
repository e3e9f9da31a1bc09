"""TOTP secrets sealed at rest: what the database holds, the keys, and rotating them
(`manage.py rotate_otp_keys`) while codes keep working."""

from __future__ import annotations

import base64
import re
from io import StringIO
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import CommandError, call_command

from apps.twofactor.models import SealedTOTPDevice
from apps.twofactor.sealing import seal, sealed_with_first_key, unseal
from tests.servers import PROJECT_DIR
from tests.test_settings import clean_env, run_python

from .conftest import bearer, code_for, make_device

pytestmark = pytest.mark.django_db

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def post(client, path, body, token):
    return client.post(path, body, content_type="application/json", headers=bearer(token))


def enrol_and_confirm(client, token) -> tuple[SealedTOTPDevice, str]:
    """An authenticator enrolled over the API; its base32 secret as the phone got it."""
    body = post(client, "/api/v1/otp/devices", {}, token).json()
    secret = parse_qs(urlsplit(body["provisioning_uri"]).query)["secret"][0]
    device = SealedTOTPDevice.objects.get(pk=body["id"])
    confirm = f"/api/v1/otp/devices/{device.pk}/confirm"
    assert post(client, confirm, {"token": code_for(device)}, token).json() == {"status": True}
    return device, secret


def verifies(client, token, device, steps) -> bool:
    response = post(client, "/api/v1/otp/verify", {"token": code_for(device, steps=steps)}, token)
    return response.json() == {"status": True}


def test_the_database_holds_only_the_sealed_key(client, person, api_token):
    device, secret = enrol_and_confirm(client, api_token)
    stored = SealedTOTPDevice.objects.values_list("sealed_key", flat=True).get(pk=device.pk)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    assert unseal(stored) == key
    for form in (secret, secret.lower(), key.hex(), key.hex().upper()):
        assert form not in stored
    assert stored != seal(key)  # a fresh IV each time: equal secrets do not look equal


def test_each_device_gets_its_own_random_key(person):
    first, second = make_device(person), make_device(person, name="Tablet")
    assert first.bin_key != second.bin_key
    assert len(first.bin_key) == 20  # 160 bits


def test_rotation_keeps_every_code_working(client, person, api_token, settings):
    settings.OTP_ENCRYPTION_KEYS = [OLD_KEY]
    device, _ = enrol_and_confirm(client, api_token)
    sealed_before = SealedTOTPDevice.objects.get(pk=device.pk).sealed_key

    settings.OTP_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]  # the new key first, the old one kept
    assert verifies(client, api_token, device, steps=1)
    out = StringIO()
    call_command("rotate_otp_keys", stdout=out)
    assert "Re-encrypted 1 secrets with the first key; 0 already were." in out.getvalue()
    sealed_after = SealedTOTPDevice.objects.get(pk=device.pk).sealed_key
    assert sealed_after != sealed_before
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(sealed_after.encode())

    settings.OTP_ENCRYPTION_KEYS = [NEW_KEY]  # the old key removed
    assert verifies(client, api_token, device, steps=2)
    assert not verifies(client, api_token, device, steps=2)  # still accepted once only


def test_rotation_can_be_run_again_after_an_interruption(person, settings):
    settings.OTP_ENCRYPTION_KEYS = [OLD_KEY]
    devices = [make_device(person, name=f"Phone {n}") for n in range(5)]
    keys = {device.pk: device.bin_key for device in devices}
    settings.OTP_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY]
    # What a run stopped after its first batch of two leaves behind:
    call_command("rotate_otp_keys", batch_size=2, stdout=StringIO())
    for device in devices[2:]:
        SealedTOTPDevice.objects.filter(pk=device.pk).update(
            sealed_key=Fernet(OLD_KEY).encrypt(keys[device.pk]).decode()
        )

    out = StringIO()
    call_command("rotate_otp_keys", batch_size=2, stdout=out)
    assert "Re-encrypted 3 secrets with the first key; 2 already were." in out.getvalue()
    settings.OTP_ENCRYPTION_KEYS = [NEW_KEY]
    for device in SealedTOTPDevice.objects.all():
        assert sealed_with_first_key(device.sealed_key)
        assert device.bin_key == keys[device.pk]


def test_rotation_refuses_to_finish_when_a_secret_opens_with_no_key(person, settings):
    settings.OTP_ENCRYPTION_KEYS = [OLD_KEY]
    lost = make_device(person)
    settings.OTP_ENCRYPTION_KEYS = [NEW_KEY]  # the old key dropped too early
    kept = make_device(person, name="Tablet")
    with pytest.raises(CommandError, match=rf"authenticator ids {lost.pk}\)"):
        call_command("rotate_otp_keys", stdout=StringIO())
    assert SealedTOTPDevice.objects.get(pk=kept.pk).bin_key == kept.bin_key


def test_a_batch_size_below_one_is_refused(db):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("rotate_otp_keys", batch_size=0)


# --- The keys come from the environment ----------------------------------------------------------

SHOW_KEYS = """
import django
from django.conf import settings
django.setup()
print(len(settings.OTP_ENCRYPTION_KEYS))
"""


def test_keys_are_required_outside_local_and_startup_names_them():
    env = clean_env(ENVIRONMENT="production", SECRET_KEY="k" * 60, OTP_ENCRYPTION_KEYS="")
    result = run_python(SHOW_KEYS, env)
    assert result.returncode != 0
    assert "OTP_ENCRYPTION_KEYS must be set when ENVIRONMENT=production" in result.stderr


def test_a_malformed_key_stops_startup():
    env = clean_env(
        ENVIRONMENT="production", SECRET_KEY="k" * 60, OTP_ENCRYPTION_KEYS=f"{NEW_KEY},nope"
    )
    result = run_python(SHOW_KEYS, env)
    assert result.returncode != 0
    assert "OTP_ENCRYPTION_KEYS: key 2 is not a Fernet key" in result.stderr


def test_the_published_example_key_is_refused_outside_local():
    example = (PROJECT_DIR / "env" / "production" / ".env.example").read_text()
    published = re.search(r"^OTP_ENCRYPTION_KEYS=(\S+)$", example, flags=re.M).group(1)
    env = clean_env(
        ENVIRONMENT="production", SECRET_KEY="k" * 60, OTP_ENCRYPTION_KEYS=f"{NEW_KEY},{published}"
    )
    result = run_python(SHOW_KEYS, env)
    assert result.returncode != 0
    assert "OTP_ENCRYPTION_KEYS: key 2 is the published example value" in result.stderr


def test_locally_a_key_is_derived_from_the_secret_key():
    result = run_python(SHOW_KEYS, clean_env(ENVIRONMENT="local", OTP_ENCRYPTION_KEYS=""))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_several_keys_are_read_in_order():
    env = clean_env(
        ENVIRONMENT="production", SECRET_KEY="k" * 60, OTP_ENCRYPTION_KEYS=f"{NEW_KEY},{OLD_KEY}"
    )
    result = run_python(SHOW_KEYS, env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
