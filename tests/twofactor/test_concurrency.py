"""Requests racing with the same code: exactly one wins.

The project runs under gunicorn with two worker processes, and two threads send the same code at
the same moment (a barrier releases them together), so the requests really overlap in the
database. Rounds, each with a fresh person, make a lost race likely to show if codes were
accepted by read-check-save: a pair loses it less often than four racers do, so there are more
rounds, which cost far less than more workers.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest

from apps.accounts.tokens import issue_user_token
from tests.servers import gunicorn

from .conftest import code_for, make_backup_codes, make_device, make_person

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RACERS = 2
ROUNDS = 8


def post_json(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def race(url: str, body: dict, tokens: list[str]) -> list[tuple[int, dict]]:
    """Send `body` with each token at the same moment; the answers, in no particular order."""
    barrier = threading.Barrier(len(tokens))
    answers: list[tuple[int, dict]] = []

    def send(token: str) -> None:
        barrier.wait()
        answers.append(post_json(url, body, token))

    threads = [threading.Thread(target=send, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def accepted(answers: list[tuple[int, dict]]) -> int:
    assert all(status in (200, 429) for status, _ in answers), answers
    return sum(1 for status, body in answers if status == 200 and body["status"] is True)


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), gunicorn(workers=RACERS) as base_url:
        yield base_url


def test_the_same_totp_code_sent_at_once_is_accepted_exactly_once(server):
    for round_number in range(ROUNDS):
        person = make_person(f"racer{round_number}")
        device = make_device(person)
        tokens = [issue_user_token(user=person).key for _ in range(RACERS)]
        answers = race(f"{server}/api/v1/otp/verify", {"token": code_for(device)}, tokens)
        assert accepted(answers) == 1, answers


def test_the_same_backup_code_sent_at_once_is_accepted_exactly_once(server):
    for round_number in range(ROUNDS):
        person = make_person(f"backup{round_number}")
        make_backup_codes(person, ["abcd2345"])
        tokens = [issue_user_token(user=person).key for _ in range(RACERS)]
        answers = race(f"{server}/api/v1/otp/verify", {"token": "abcd2345"}, tokens)
        assert accepted(answers) == 1, answers
