"""A revoked key stops working even when the cache could not be told at the moment of revoking
(#12.4): its cached entry is short-lived, and the admin says the cache was unreachable."""

from __future__ import annotations

import pytest
import redis

from apps.actions.clients import create_api_client
from apps.actions.models import ApiClient
from tests.actions.conftest import ActionCaller
from tests.servers import cache_at, redis_server, wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_redis(settings):
    """The cache on a Redis of the test's own, which it may pause."""
    with redis_server() as url:
        settings.CACHES = cache_at(url)
        settings.CACHE_RETRY_AFTER = 0  # try Redis again as soon as it answers
        yield redis.Redis.from_url(url)


def test_a_key_revoked_while_redis_is_paused_is_refused_once_redis_answers(
    client, staff_client, own_redis, settings
):
    settings.API_KEY_CACHE_SECONDS = 1
    api_client, key = create_api_client(name="paused")
    call = ActionCaller(client, key)
    assert call("example/foo", {"name": "ana"}).status_code == 200  # verified and cached
    [cached] = own_redis.keys("*apiclient:*")

    own_redis.execute_command("CLIENT", "PAUSE", "3000", "ALL")
    response = staff_client.post(
        "/admin/actions/apiclient/",
        {"action": "revoke", "_selected_action": [api_client.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("could not be reached" in m for m in messages), messages
    assert any("within 1 second of the cache" in m for m in messages), messages  # ngettext
    assert not ApiClient.objects.get(pk=api_client.pk).is_active

    wait_until(lambda: own_redis.ping())  # the pause is over: Redis answers again
    # What was cached before the revocation ends within API_KEY_CACHE_SECONDS of now…
    remaining = own_redis.pttl(cached)
    assert remaining <= settings.API_KEY_CACHE_SECONDS * 1000
    # … and from then on the key is refused.
    wait_until(lambda: call("example/foo", {"name": "ana"}).status_code == 401)


def test_revoking_with_the_cache_up_refuses_the_key_at_once(client, staff_client):
    api_client, key = create_api_client(name="up")
    call = ActionCaller(client, key)
    assert call("example/foo", {"name": "ana"}).status_code == 200
    response = staff_client.post(
        "/admin/actions/apiclient/",
        {"action": "revoke", "_selected_action": [api_client.pk]},
        follow=True,
    )
    messages = [str(m) for m in response.context["messages"]]
    assert not any("could not be reached" in m for m in messages)
    assert call("example/foo", {"name": "ana"}).status_code == 401
