"""`POST /api/v1/otp/verify` under gunicorn takes the WSGI fast path (config/wsgi.py): the same
answers, and the same changes to the person's factors and security events, as the DRF view
behind Django's API handler. Every case runs twice, on two people set up alike: once through
Django alone, once through the fast path in front of it."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory
from django.utils import timezone

from apps.accounts.models import UserToken
from apps.accounts.tokens import issue_user_token
from apps.core.wsgi import ApiHandler, FastPaths
from apps.twofactor.models import SealedTOTPDevice, SecondFactorLock, SecurityEvent
from apps.twofactor.wsgi import VerifyRoute
from tests.servers import call_wsgi
from tests.twofactor.conftest import (
    code_for,
    make_backup_codes,
    make_device,
    make_person,
    wrong_code,
)

# The fast path and Django share the database connection, which the fast path closes when a
# request ends as Django does: these tests commit.
pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/otp/verify"


def right(device, person):
    return {"token": code_for(device)}


def wrong(device, person):
    return {"token": wrong_code(device)}


def replayed(device, person):
    code = code_for(device)
    device.verify_token(code)  # accepted once already
    return {"token": code}


def backup(device, person):
    make_backup_codes(person, ["abcd2345"])
    return {"token": "abcd2345"}


def throttled(device, person):
    SealedTOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_count=3, throttling_failure_timestamp=timezone.now()
    )
    return {"token": code_for(device)}


def locked(device, person):
    SecondFactorLock.objects.create(user=person, consecutive_failures=10, locked_at=timezone.now())
    return {"token": code_for(device)}


def malformed(device, person):
    return {"token": "12"}


def no_device(device, person):
    device.delete()
    person.is_staff = True  # TWO_FACTOR_REQUIRED=staff covers them, and they have none
    person.save()
    return {"token": "123456"}


# name: (set-up, how the request differs: its body, media type, Accept, token)
CASES = {
    "accepted": (right, {}),
    "wrong code": (wrong, {}),
    "replayed code": (replayed, {}),
    "backup code": (backup, {}),
    "throttled": (throttled, {}),
    "locked": (locked, {}),
    "malformed code": (malformed, {}),
    "not JSON": (right, {"body": b"token=123456"}),
    "JSON not an object": (right, {"body": b"[1, 2]"}),
    "another media type": (right, {"content_type": "text/plain"}),
    "asks for XML": (right, {"accept": "application/xml"}),
    "no token": (right, {"token": None}),
    "unknown token": (right, {"token": "unknown"}),
    "not enrolled, policy requires": (no_device, {}),
}


def request(case: str, index: int) -> tuple[dict, object]:
    """One person set up for the case, and the request their app sends."""
    setup, options = CASES[case]
    person = make_person(f"p{index}")
    device = make_device(person)
    payload = setup(device, person)
    token = options.get("token", "live")
    key = {"live": issue_user_token(user=person).key, "unknown": "x" * 43, None: None}[token]
    headers = {"X-Request-ID": f"r{index}"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    if "accept" in options:
        headers["Accept"] = options["accept"]
    body = options.get("body", json.dumps(payload).encode())
    content_type = options.get("content_type", "application/json")
    environ = RequestFactory().post(PATH, body, content_type=content_type, headers=headers).environ
    return environ, person


def state(person) -> dict:
    """What a code check may change: the device, the token, the lock, the events."""
    device = SealedTOTPDevice.objects.filter(user=person).first()
    lock = SecondFactorLock.objects.filter(user=person).first()
    return {
        "device": device
        and (device.last_t, device.throttling_failure_count, device.last_used_at is not None),
        "tokens verified": [t.is_verified for t in UserToken.objects.filter(user=person)],
        "lock": lock and (lock.consecutive_failures, lock.locked_at is not None),
        "events": sorted(SecurityEvent.objects.filter(user=person).values_list("kind", flat=True)),
    }


def comparable(answer, request_id: str) -> tuple:
    status, headers, body = answer
    headers.pop("Content-Length", None)  # the fast path states it; gunicorn does for Django's
    assert headers.pop("X-Request-ID") == request_id
    if headers.get("Content-Type", "").endswith("json"):
        body = json.loads(body)
        if isinstance(body, dict) and "request_id" in body:
            assert body.pop("request_id") == request_id
    return status, headers, body


@pytest.mark.parametrize("case", CASES)
def test_the_fast_path_answers_and_changes_as_django_does(case):
    environ, django_person = request(case, 1)
    django = comparable(call_wsgi(ApiHandler(), environ), "r1")
    environ, fast_person = request(case, 2)
    fast = comparable(call_wsgi(FastPaths(ApiHandler(), [VerifyRoute()]), environ), "r2")
    assert fast == django
    assert state(fast_person) == state(django_person)


def test_an_accepted_code_is_answered_by_the_fast_path_itself(monkeypatch):
    """The common request never reaches Django's handler (which would answer the same)."""
    environ, person = request("accepted", 1)

    def not_django(environ, start_response):
        raise AssertionError("passed on to Django")

    status, _, body = call_wsgi(FastPaths(not_django, [VerifyRoute()]), environ)
    assert (status, json.loads(body)) == ("200 OK", {"status": True})
    assert state(person)["tokens verified"] == [True]
