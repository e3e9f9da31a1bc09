"""A person sees their own security events, newest first and a page at a time, on
/account/security/ and through GET /api/v1/account/events; staff see everyone's, read-only, in the
admin, filtered by kind and person; `prune_security_events --days N` drops the old ones."""

from __future__ import annotations

import base64
import datetime as dt
import re
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from apps.accounts.tokens import issue_user_token
from apps.twofactor.models import SecurityEvent
from tests.problems import assert_problem

from .conftest import bearer, code_for, make_person

pytestmark = pytest.mark.django_db

START = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def add_events(user, kinds: list[str], *, start=START) -> list[SecurityEvent]:
    """Events of `kinds`, one minute apart from `start`, oldest first."""
    return [
        SecurityEvent.objects.create(
            user=user,
            kind=kind,
            at=start + dt.timedelta(minutes=minute),
            ip="203.0.113.9",
            user_agent="Phone/2.0",
            details={"via": "api"},
        )
        for minute, kind in enumerate(kinds)
    ]


def kinds_on_page(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="([a-z_]+)">', html)


@pytest.fixture
def logged_in(client, person):
    client.force_login(person)
    SecurityEvent.objects.all().delete()
    return client


# --- /account/security/ ---------------------------------------------------------------------------


def test_the_page_shows_the_persons_own_events_newest_first(logged_in, person):
    add_events(person, ["login", "device_added", "backup_codes_generated"])
    add_events(make_person("bob"), ["login_failed"])

    response = logged_in.get("/account/security/")

    assert response.status_code == 200
    html = response.content.decode()
    assert kinds_on_page(html) == ["backup_codes_generated", "device_added", "login"]
    assert "Second factor added" in html
    assert "203.0.113.9" in html
    assert "Phone/2.0" in html
    assert "in the app" in html  # the `via` detail, in words


def test_the_page_is_paginated(logged_in, person, settings):
    settings.SECURITY_EVENTS_PAGE_SIZE = 2
    add_events(person, ["login", "otp_failed", "login_failed", "token_issued", "token_revoked"])

    first = logged_in.get("/account/security/").content.decode()
    second = logged_in.get("/account/security/?page=2").content.decode()
    last = logged_in.get("/account/security/?page=3").content.decode()

    assert kinds_on_page(first) == ["token_revoked", "token_issued"]
    assert kinds_on_page(second) == ["login_failed", "otp_failed"]
    assert kinds_on_page(last) == ["login"]
    assert 'href="?page=2" rel="next"' in first
    assert "Page 1 of 3" in first
    # A page past the end, or not a number, shows the nearest one rather than an error.
    assert kinds_on_page(logged_in.get("/account/security/?page=99").content.decode()) == ["login"]
    assert kinds_on_page(logged_in.get("/account/security/?page=x").content.decode()) == [
        "token_revoked",
        "token_issued",
    ]


def test_the_page_is_linked_from_the_two_factor_pages_nav(logged_in):
    html = logged_in.get("/account/two-factor/").content.decode()
    assert '<a href="/account/security/">Security events</a>' in html


def test_the_page_needs_a_login(client, db):
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/")


def test_the_page_needs_the_second_factor_of_a_person_who_has_one(client, device):
    client.force_login(device.user)  # the password alone: not verified by the code yet
    response = client.get("/account/security/")
    assert response.status_code == 302
    assert response["Location"].startswith("/account/login/code/")


def test_the_page_changes_nothing_on_post(logged_in, person):
    add_events(person, ["login"])
    assert logged_in.post("/account/security/").status_code == 405
    assert SecurityEvent.objects.count() == 1


# --- GET /api/v1/account/events -------------------------------------------------------------------


def events_api(client, token, url="/api/v1/account/events"):
    return client.get(url, headers=bearer(token))


@pytest.fixture
def token(person) -> str:
    key = issue_user_token(user=person).key
    SecurityEvent.objects.all().delete()
    return key


def test_the_api_answers_the_persons_events(client, person, token):
    add_events(person, ["login", "device_added"])
    add_events(make_person("bob"), ["login_failed"])

    response = events_api(client, token)

    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {
                "kind": "device_added",
                "at": "2026-11-01T12:01:00Z",
                "ip": "203.0.113.9",
                "user_agent": "Phone/2.0",
                "detail": {"via": "api"},
            },
            {
                "kind": "login",
                "at": "2026-11-01T12:00:00Z",
                "ip": "203.0.113.9",
                "user_agent": "Phone/2.0",
                "detail": {"via": "api"},
            },
        ],
        "next": None,
    }


def test_the_api_is_paginated_by_next(client, person, token, settings):
    settings.SECURITY_EVENTS_PAGE_SIZE = 2
    add_events(person, ["login", "otp_failed", "login_failed", "token_issued", "token_revoked"])

    seen, url = [], "/api/v1/account/events"
    while url:
        body = events_api(client, token, url).json()
        assert len(body["results"]) <= 2
        seen += [event["kind"] for event in body["results"]]
        url = body["next"]
    assert seen == ["token_revoked", "token_issued", "login_failed", "otp_failed", "login"]


def test_the_api_needs_a_token(client, db):
    assert_problem(client.get("/api/v1/account/events"), 401)


def test_the_api_refuses_a_token_no_code_verified_once_the_person_has_a_factor(
    client, device, token
):
    assert_problem(events_api(client, token), 403)
    verified = client.post(
        "/api/v1/otp/verify",
        {"token": code_for(device)},
        content_type="application/json",
        headers=bearer(token),
    )
    assert verified.json() == {"status": True}
    assert events_api(client, token).status_code == 200


@pytest.mark.parametrize(
    "cursor",
    [
        "a",  # not base64
        base64.b64encode(b"o=x").decode(),  # an offset that is not a number
        base64.b64encode(b"p=yesterday").decode(),  # a position that is not a time
    ],
)
def test_a_cursor_not_given_by_next_is_404(client, person, token, cursor):
    add_events(person, ["login"])
    url = f"/api/v1/account/events?{urlencode({'cursor': cursor})}"
    assert_problem(events_api(client, token, url), 404)


def test_a_query_parameter_other_than_the_cursor_is_400(client, person, token):
    add_events(person, ["login"])
    response = events_api(client, token, "/api/v1/account/events?kind=login")
    assert_problem(response, 400)
    assert "kind" in response.json()["errors"]


# --- The admin ------------------------------------------------------------------------------------


def test_staff_see_everyones_events_filtered_by_kind_and_person(staff_client, person):
    bob = make_person("bob")
    add_events(person, ["login", "device_added"])
    add_events(bob, ["login_failed"])

    everyone = staff_client.get("/admin/twofactor/securityevent/").content.decode()
    by_kind = staff_client.get("/admin/twofactor/securityevent/?kind__exact=device_added")
    by_person = staff_client.get(f"/admin/twofactor/securityevent/?user__id__exact={bob.pk}")
    searched = staff_client.get("/admin/twofactor/securityevent/?q=bob")

    assert "3 security events" in everyone
    assert "1 security event" in by_kind.content.decode()
    assert "Second factor added" in by_kind.content.decode()
    assert "1 security event" in by_person.content.decode()
    assert "Wrong password" in by_person.content.decode()
    assert "1 security event" in searched.content.decode()


def test_staff_cannot_change_add_or_delete_events(staff_client, person):
    (event,) = add_events(person, ["login"])
    change = f"/admin/twofactor/securityevent/{event.pk}/change/"

    assert staff_client.get(change).status_code == 200  # read-only view
    assert staff_client.post(change, {"kind": "logout"}).status_code == 403
    assert staff_client.get("/admin/twofactor/securityevent/add/").status_code == 403
    delete = f"/admin/twofactor/securityevent/{event.pk}/delete/"
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    event.refresh_from_db()
    assert event.kind == "login"


# --- prune_security_events ------------------------------------------------------------------------


def prune(*args: str) -> str:
    out = StringIO()
    call_command("prune_security_events", *args, stdout=out)
    return out.getvalue()


def test_prune_deletes_events_older_than_the_days_given(person):
    now = timezone.now()
    add_events(person, ["login", "otp_failed"], start=now - dt.timedelta(days=40))
    add_events(person, ["device_added"], start=now - dt.timedelta(days=10))

    assert prune("--days", "30") == "Deleted 2 security event(s) older than 30 day(s).\n"
    assert list(SecurityEvent.objects.values_list("kind", flat=True)) == ["device_added"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "0"], "at least 1"),
        (["--days", "-5"], "at least 1"),
        (["--days", "999999999"], "too large"),
    ],
)
def test_prune_refuses_a_bad_number_of_days_and_deletes_nothing(person, args, message):
    add_events(person, ["login"], start=timezone.now() - dt.timedelta(days=400))
    with pytest.raises(CommandError, match=message):
        prune(*args)
    assert SecurityEvent.objects.count() == 1


@pytest.mark.parametrize("args", [[], ["--days", "ten"], ["--days", "1.5"]])
def test_prune_needs_a_whole_number_of_days(person, args):
    add_events(person, ["login"], start=timezone.now() - dt.timedelta(days=400))
    with pytest.raises(CommandError):
        prune(*args)
    assert SecurityEvent.objects.count() == 1
