"""User tokens: random, stored as a digest, expiring, revocable, read only where a view asks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.credentials import secret_digest
from apps.accounts.models import UserToken
from apps.accounts.tokens import issue_user_token, revoke_user_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(django_user_model):
    return django_user_model.objects.create_user(username="alice", password="x" * 20)


def test_a_token_is_stored_as_its_sha256_digest_only(person):
    issued = issue_user_token(user=person)
    stored = UserToken.objects.get()
    assert stored.digest == secret_digest(issued.key)
    assert len(issued.key) >= 43  # 32 random bytes
    assert issued.key not in {stored.digest, stored.key_prefix}


def test_tokens_differ_every_time(person):
    assert issue_user_token(user=person).key != issue_user_token(user=person).key


def test_a_new_token_starts_unverified_and_expires(person, settings):
    settings.USER_TOKEN_LIFETIME = 60
    token = issue_user_token(user=person).token
    assert not token.is_verified
    assert token.expires_at - timezone.now() <= timedelta(seconds=60)


def test_expired_tokens_are_cleaned_up_when_a_new_one_is_issued(person):
    old = issue_user_token(user=person).token
    UserToken.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(days=1))
    issue_user_token(user=person)
    assert not UserToken.objects.filter(pk=old.pk).exists()


def test_revoking_deletes_the_token(person):
    token = issue_user_token(user=person).token
    revoke_user_token(token=token)
    assert not UserToken.objects.exists()


@pytest.mark.urls("tests.core.urls")
def test_user_tokens_authenticate_only_views_that_declare_them(client, person):
    key = issue_user_token(user=person).key
    # tests.core.urls' /t/login declares another bearer scheme: a user token means nothing there.
    response = client.get("/t/login", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 401
