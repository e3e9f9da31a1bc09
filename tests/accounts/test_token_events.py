"""Issuing and revoking user tokens is recorded as security events (`token_issued`,
`token_revoked`), whoever calls it, and never with the token or its prefix."""

import pytest

from apps.accounts.models import UserToken
from apps.accounts.tokens import issue_user_token, revoke_user_token, revoke_user_tokens
from apps.twofactor.models import SecurityEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="x" * 20)


def recorded(person) -> list[tuple[str, dict]]:
    return [
        (event.kind, event.details)
        for event in SecurityEvent.objects.filter(user=person).order_by("id")
    ]


def test_issuing_a_token_is_recorded_without_the_token(person):
    issued = issue_user_token(user=person, method="passkey")
    details = {"token_id": issued.token.pk, "method": "passkey"}
    assert recorded(person) == [("token_issued", details)]
    stored = str(SecurityEvent.objects.values().get())
    assert issued.key not in stored
    assert issued.token.key_prefix not in stored


def test_revoking_one_token_is_recorded_once(person):
    token = issue_user_token(user=person).token
    revoke_user_token(token=token)
    revoke_user_token(token=token)  # already gone: nothing more happened
    assert [kind for kind, _ in recorded(person)] == ["token_issued", "token_revoked"]


def test_revoking_every_token_is_one_event_with_the_count(person):
    issue_user_token(user=person)
    issue_user_token(user=person)
    assert revoke_user_tokens(user=person) == 2
    assert recorded(person)[-1] == ("token_revoked", {"count": 2})
    assert not UserToken.objects.exists()


def test_revoking_when_there_is_no_token_records_nothing(person):
    assert revoke_user_tokens(user=person) == 0
    assert recorded(person) == []
