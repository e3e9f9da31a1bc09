"""RFC 6238 Appendix B: the published SHA-1 test vectors, checked against the device model."""

import pytest

from apps.twofactor.models import SealedTOTPDevice
from apps.twofactor.sealing import seal
from apps.twofactor.verification import verify_totp

from .conftest import make_person

# Appendix B's seed for HMAC-SHA1 ("12345678901234567890"), 8 digits, 30-second steps, T0 = 0.
RFC_SEED = b"12345678901234567890"
VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def rfc_device():
    return SealedTOTPDevice.objects.create(
        user=make_person(),
        name="RFC 6238",
        sealed_key=seal(RFC_SEED),
        digits=8,
        step=30,
        t0=0,
        tolerance=0,
        confirmed=True,
    )


@pytest.mark.parametrize(("unix_time", "code"), VECTORS)
def test_the_device_accepts_the_rfc_code_at_its_time(rfc_device, unix_time, code):
    assert verify_totp(devices=[rfc_device], code=code, at=unix_time) == rfc_device
    rfc_device.refresh_from_db()
    assert rfc_device.last_t == unix_time // 30


@pytest.mark.parametrize(("unix_time", "code"), VECTORS)
def test_the_device_refuses_the_rfc_code_one_step_away(rfc_device, unix_time, code):
    # With no tolerance, the same code 30 seconds later belongs to another step.
    assert verify_totp(devices=[rfc_device], code=code, at=unix_time + 30) is None
