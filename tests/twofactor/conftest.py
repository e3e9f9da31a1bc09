"""People, authenticators and codes for the two-factor tests.

Codes are computed with pyotp from the device's provisioning URI, as a phone would: an
implementation independent of the django-otp maths the server uses.
"""

from __future__ import annotations

import re
import time

import pyotp
import pytest

from apps.accounts.models import User
from apps.accounts.tokens import issue_user_token
from apps.twofactor import reauth
from apps.twofactor.models import BackupCode, BackupCodeDevice, SealedTOTPDevice
from apps.twofactor.sealing import backup_code_digest

PASSWORD = "correct horse battery staple"


def phone_for(device: SealedTOTPDevice) -> pyotp.TOTP:
    """What an authenticator app holds after scanning the device's QR code."""
    return pyotp.parse_uri(device.config_url)


def code_for(device: SealedTOTPDevice, *, steps: int = 0, at: float | None = None) -> str:
    """The device's code now (or at `at`), `steps` time steps later or earlier."""
    moment = time.time() if at is None else at
    return phone_for(device).at(moment + steps * device.step)


def wrong_code(device: SealedTOTPDevice) -> str:
    """A well-formed code the device does not accept now (none of the three it would)."""
    valid = {code_for(device, steps=steps) for steps in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in valid)


def secret_from_page(html: str) -> str:
    """The grouped base32 key the enrolment page shows for typing by hand."""
    match = re.search(r'<code class="secret" id="secret">([A-Z2-7 ]+)</code>', html)
    assert match, "the page shows no secret"
    return match.group(1).replace(" ", "")


def make_person(username: str = "alice", **fields) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, **fields)


def make_device(user: User, *, confirmed: bool = True, name: str = "Phone") -> SealedTOTPDevice:
    return SealedTOTPDevice.objects.create(user=user, name=name, confirmed=confirmed)


def make_backup_codes(user: User, codes: list[str]) -> BackupCodeDevice:
    """Backup codes as the project stores them: keyed hashes only."""
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    BackupCode.objects.bulk_create(
        BackupCode(device=device, digest=backup_code_digest(user_id=user.pk, code=code))
        for code in codes
    )
    return device


def mark_reauthenticated(session) -> None:
    """As if the password or a code had just been entered in this (test client's) session."""
    session[reauth.SESSION_KEY] = time.time()


def backup_codes_left(user: User) -> int:
    return BackupCode.objects.filter(device__user=user).count()


def backup_code_works(user: User, code: str) -> bool:
    """Whether `code` is one of the person's unused backup codes (checked without spending it)."""
    digest = backup_code_digest(user_id=user.pk, code=code)
    return BackupCode.objects.filter(device__user=user, digest=digest).exists()


@pytest.fixture
def person(db) -> User:
    """Someone with a password and no second factor yet."""
    return make_person()


@pytest.fixture
def device(person) -> SealedTOTPDevice:
    """The person's confirmed authenticator."""
    return make_device(person)


@pytest.fixture
def api_token(person) -> str:
    """A user token for the person, not yet verified by a code (as POST auth/token gives)."""
    return issue_user_token(user=person).key


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
