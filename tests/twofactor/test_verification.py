"""Codes are checked once, within ±1 step, with django-otp's throttling, in at most two queries."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.twofactor.models import BackupCode, SealedTOTPDevice
from apps.twofactor.verification import CodeThrottled, verify_code

from .conftest import backup_code_works, code_for, make_backup_codes, make_device, wrong_code

pytestmark = pytest.mark.django_db


def unthrottle(*devices):
    """As if the throttling delay had passed, without waiting for it."""
    long_ago = timezone.now() - timedelta(days=1)
    for device in devices:
        type(device).objects.filter(pk=device.pk).update(throttling_failure_timestamp=long_ago)


@pytest.mark.parametrize("steps", [-1, 0, 1])
def test_a_code_one_step_early_or_late_is_accepted(person, device, steps):
    assert verify_code(user=person, code=code_for(device, steps=steps)) == device


@pytest.mark.parametrize("steps", [-2, 2])
def test_a_code_two_steps_away_is_refused(person, device, steps):
    assert verify_code(user=person, code=code_for(device, steps=steps)) is None


def test_a_code_is_accepted_once(person, device):
    code = code_for(device)
    assert verify_code(user=person, code=code) == device
    assert verify_code(user=person, code=code) is None


def test_an_older_code_is_refused_after_a_newer_one(person, device):
    assert verify_code(user=person, code=code_for(device, steps=1)) == device
    assert verify_code(user=person, code=code_for(device)) is None


def test_codes_typed_with_spaces_are_accepted(person, device):
    code = code_for(device)
    assert verify_code(user=person, code=f" {code[:3]} {code[3:]} ") == device


def test_unconfirmed_devices_do_not_count(person):
    pending = make_device(person, confirmed=False)
    assert verify_code(user=person, code=code_for(pending)) is None


def test_a_wrong_code_throttles_the_device(person, device):
    assert verify_code(user=person, code=wrong_code(device)) is None
    with pytest.raises(CodeThrottled) as throttled:
        verify_code(user=person, code=code_for(device))
    assert throttled.value.retry_after >= 1
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert device.last_t == -1  # the right code was not even checked


def test_a_right_code_resets_the_failures_of_its_device_and_no_other(person, device):
    other = make_device(person, name="Old phone")
    for _ in range(3):
        unthrottle(device, other)
        assert verify_code(user=person, code="12345678") is None  # wrong length: fails both
    unthrottle(device, other)
    assert verify_code(user=person, code=code_for(device)) == device
    device.refresh_from_db()
    other.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert other.throttling_failure_count == 3


def test_a_backup_code_is_accepted_once(person, device):
    backup = make_backup_codes(person, ["abcd2345", "efgh6723"])
    assert verify_code(user=person, code="ABCD 2345") == backup
    unthrottle(backup)
    assert verify_code(user=person, code="abcd2345") is None
    assert BackupCode.objects.count() == 1
    assert backup_code_works(person, "efgh6723")


def test_wrong_backup_codes_are_throttled(person):
    make_backup_codes(person, ["abcd2345"])
    assert verify_code(user=person, code="zzzz2345") is None
    with pytest.raises(CodeThrottled):
        verify_code(user=person, code="abcd2345")


def test_a_person_without_devices_has_no_valid_code(person):
    assert verify_code(user=person, code="123456") is None
    assert verify_code(user=person, code="abcd2345") is None


def test_another_persons_device_never_accepts(person, device, django_user_model):
    stranger = django_user_model.objects.create_user(username="mallory", password="x" * 20)
    assert verify_code(user=stranger, code=code_for(device)) is None
    assert SealedTOTPDevice.objects.get(pk=device.pk).last_t == -1
