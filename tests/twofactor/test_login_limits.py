"""Password checks are limited per client address, per username and per process, before any
hashing, on every login path: the API token, the login page and the admin's login."""

from __future__ import annotations

import pytest

from apps.accounts.models import UserToken
from tests.problems import assert_problem

from .conftest import PASSWORD
from .hashers import CountingPBKDF2PasswordHasher

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"  # FORWARDED_ALLOW_IPS' default: a local nginx
CLIENT = "203.0.113.7"
WRONG = "not the password"


@pytest.fixture
def hashes(settings, person):
    """How many password hashes the test has computed so far (production's PBKDF2). The person's
    password is stored by it too, as in production, not by the suite's fast hasher."""
    settings.PASSWORD_HASHERS = ["tests.twofactor.hashers.CountingPBKDF2PasswordHasher"]
    person.set_password(PASSWORD)
    person.save(update_fields=["password"])
    start = CountingPBKDF2PasswordHasher.computed
    return lambda: CountingPBKDF2PasswordHasher.computed - start


def token(client, *, username="alice", password=WRONG, address=CLIENT, forwarded_for=None):
    """POST /api/v1/auth/token from `address` (REMOTE_ADDR), through a proxy if `forwarded_for`."""
    extra = {"REMOTE_ADDR": address}
    if forwarded_for is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded_for
    return client.post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
        **extra,
    )


def test_wrong_passwords_from_one_address_are_throttled_before_hashing(
    client, person, settings, hashes
):
    settings.LOGIN_ADDRESS_LIMIT = 3
    for number in range(3):
        assert_problem(token(client, username=f"someone-{number}"), 401)
    assert hashes() == 3
    for username in ("someone-else", "alice"):
        response = token(client, username=username, password=PASSWORD)
        assert_problem(response, 429)
        assert 1 <= int(response["Retry-After"]) <= settings.LOGIN_ADDRESS_WINDOW
    assert hashes() == 3  # refused without hashing, even the right password
    assert not UserToken.objects.exists()
    # Another address is not held back by this one's failures.
    assert token(client, password=PASSWORD, address="198.51.100.20").status_code == 201


def test_a_right_password_does_not_count_against_the_address(client, person, settings):
    settings.LOGIN_ADDRESS_LIMIT = 2
    for _ in range(3):
        assert token(client, password=PASSWORD).status_code == 201
    assert_problem(token(client), 401)
    assert_problem(token(client), 401)
    assert_problem(token(client, password=PASSWORD), 429)


def test_behind_the_trusted_proxy_the_forwarded_address_is_the_client(client, person, settings):
    settings.LOGIN_ADDRESS_LIMIT = 2
    for _ in range(2):
        assert_problem(token(client, address=PROXY, forwarded_for=CLIENT), 401)
    assert_problem(token(client, address=PROXY, forwarded_for=CLIENT), 429)
    # What the client wrote itself stands left of what the proxy appended: it changes nothing.
    assert_problem(token(client, address=PROXY, forwarded_for=f"192.0.2.1, {CLIENT}"), 429)
    # Another client behind the same proxy is counted on its own.
    assert_problem(token(client, address=PROXY, forwarded_for="198.51.100.20"), 401)


def test_a_forwarded_for_header_from_an_untrusted_peer_is_ignored(client, person, settings):
    settings.LOGIN_ADDRESS_LIMIT = 2
    for number in range(2):
        assert_problem(token(client, forwarded_for=f"192.0.2.{number}"), 401)
    assert_problem(token(client, forwarded_for="192.0.2.99"), 429)


def test_trusted_proxies_are_skipped_from_the_right(client, person, settings):
    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1", "10.0.0.0/8"]
    settings.LOGIN_ADDRESS_LIMIT = 1
    # The client, then an ingress controller (10.1.2.3) and a local nginx (the peer).
    assert_problem(token(client, address=PROXY, forwarded_for=f"{CLIENT}, 10.1.2.3"), 401)
    assert_problem(token(client, address=PROXY, forwarded_for=f"{CLIENT}, 10.9.9.9"), 429)


def test_any_peer_is_trusted_with_a_star_but_not_what_the_client_wrote(client, person, settings):
    settings.FORWARDED_ALLOW_IPS = ["*"]
    settings.LOGIN_ADDRESS_LIMIT = 1
    peer = "172.18.0.5"  # nginx in compose, on an address nobody lists
    assert_problem(token(client, address=peer, forwarded_for=f"192.0.2.1, {CLIENT}"), 401)
    assert_problem(token(client, address=peer, forwarded_for=f"192.0.2.2, {CLIENT}"), 429)


def test_the_process_computes_at_most_its_rate_of_hashes(client, person, settings, hashes):
    settings.LOGIN_PROCESS_HASH_RATE = 0.001  # one more every 1,000 s: none during the test
    settings.LOGIN_PROCESS_HASH_BURST = 2
    for number in range(2):
        assert_problem(token(client, username=f"u{number}", address=f"192.0.2.{number}"), 401)
    # A flood from many addresses and usernames: no limit of theirs is reached, the process's is.
    response = token(client, username="alice", password=PASSWORD, address="198.51.100.20")
    assert_problem(response, 429)
    assert int(response["Retry-After"]) >= 1
    assert hashes() == 2
    # The address did not lose an attempt for the process being busy.
    settings.LOGIN_PROCESS_HASH_RATE = 1.0
    settings.LOGIN_ADDRESS_LIMIT = 1
    assert token(client, password=PASSWORD, address="198.51.100.20").status_code == 201


def test_with_redis_down_each_process_still_limits_an_address(
    client, person, settings, redis_down, hashes
):
    settings.LOGIN_ADDRESS_LIMIT = 2
    for _ in range(2):
        assert_problem(token(client, username="someone"), 401)
    assert_problem(token(client, password=PASSWORD), 429)
    assert hashes() == 2


def test_the_login_page_answers_429_with_retry_after(client, person, settings, hashes):
    settings.LOGIN_ADDRESS_LIMIT = 1
    client.post("/account/login/", {"username": "bob", "password": "wrong"}, REMOTE_ADDR=CLIENT)
    response = client.post(
        "/account/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR=CLIENT
    )
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert int(response["Retry-After"]) >= 1
    assert b"Too many attempts. Wait" in response.content
    assert hashes() == 1


def test_the_admin_login_answers_429_with_retry_after(client, person, settings, hashes):
    settings.LOGIN_ADDRESS_LIMIT = 1
    person.is_staff = True
    person.save()
    client.post(
        "/admin/login/",
        {"username": "bob", "password": "wrong", "otp_token": ""},
        REMOTE_ADDR=CLIENT,
    )
    response = client.post(
        "/admin/login/",
        {"username": "alice", "password": PASSWORD, "otp_token": "123456"},
        REMOTE_ADDR=CLIENT,
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert b"Too many attempts. Wait" in response.content
    assert hashes() == 1
