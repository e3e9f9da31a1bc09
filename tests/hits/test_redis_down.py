"""When Redis fails, hits go straight to the database; when it comes back, totals continue."""

from __future__ import annotations

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from apps.core.cache import redis_breaker
from apps.hits.models import HitCounter
from apps.hits.selectors import pending_hits
from tests.hits.conftest import ManualClock, in_threads
from tests.servers import cache_at

pytestmark = pytest.mark.django_db


def hit(client: Client) -> int:
    return client.get("/", headers={"Accept": "application/json"}).json()["hits"]


def persisted(name: str = "root") -> int:
    return HitCounter.objects.get(name=name).total


def flush() -> None:
    call_command("flush_hits", stdout=io.StringIO())


def test_redis_down_counts_into_the_database(client, settings, dead_redis_url):
    settings.CACHES = cache_at(dead_redis_url)
    response = client.get("/")
    assert response.status_code == 200
    assert response.content == b"Hits: 1"
    assert persisted() == 1
    assert hit(client) == 2
    assert persisted() == 2


@pytest.mark.django_db(transaction=True)
def test_redis_down_counts_exactly_n_hits_from_many_threads(settings, dead_redis_url):
    settings.CACHES = cache_at(dead_redis_url)
    per_thread, threads = 10, 8

    def hit_many() -> list[int]:
        client = Client()
        return [hit(client) for _ in range(per_thread)]

    shown = [total for totals in in_threads(hit_many, count=threads) for total in totals]
    assert sorted(shown) == list(range(1, per_thread * threads + 1))
    assert persisted() == per_thread * threads


def test_a_hung_redis_costs_one_timeout_per_process_not_one_per_hit(
    client, settings, redis_proxy, log_lines
):
    settings.CACHES = cache_at(redis_proxy.url)
    redis_proxy.cut()  # connections are accepted, and nothing ever answers
    assert hit(client) == 1
    held = redis_proxy.held
    assert held >= 1  # the first hit waited on a silent connection
    [warning] = log_lines(logger="apps.core.cache")
    assert "(TimeoutError)" in warning["message"]  # until its socket timed out (REDIS_TIMEOUT)
    assert [hit(client) for _ in range(10)] == list(range(2, 12))
    assert redis_proxy.held == held  # and the next ten never waited on Redis again


def test_a_redis_failure_is_logged_once_as_json_with_the_request_id(client, redis_down, log_lines):
    client.get("/", headers={"X-Request-ID": "redis-down-1"})
    client.get("/", headers={"X-Request-ID": "redis-down-2"})
    [warning] = log_lines(logger="apps.core.cache")
    assert warning["level"] == "WARNING"
    assert warning["request_id"] == "redis-down-1"
    assert "going without it for 5.0s" in warning["message"]


def test_redis_is_tried_again_after_the_retry_delay(client, settings, redis_proxy):
    settings.CACHE_RETRY_AFTER = 1
    settings.CACHES = cache_at(redis_proxy.url)
    clock = redis_breaker().clock = ManualClock()
    redis_proxy.cut()
    assert hit(client) == 1
    redis_proxy.restore()
    clock.advance(0.99)
    assert hit(client) == 2  # still in the database: Redis failed less than 1 s ago
    clock.advance(0.01)
    assert hit(client) == 3  # through Redis again, seeded from the database
    assert persisted() == 2
    assert pending_hits("root") == 1


def test_when_redis_comes_back_empty_totals_continue_from_the_database(client):
    for _ in range(3):
        hit(client)
    flush()
    cache.clear()  # Redis restarted without its data
    assert hit(client) == 4


def test_only_hits_not_yet_flushed_are_lost_with_redis_memory(client):
    for _ in range(3):
        hit(client)
    flush()
    hit(client)
    hit(client)
    cache.clear()
    assert hit(client) == 4  # the two hits after the flush are gone, the three before are not


def test_after_an_outage_the_shown_total_catches_up_at_the_next_flush(
    client, settings, redis_proxy
):
    settings.CACHE_RETRY_AFTER = 0.2
    settings.CACHES = cache_at(redis_proxy.url)
    clock = redis_breaker().clock = ManualClock()
    assert [hit(client) for _ in range(2)] == [1, 2]  # pending in Redis
    redis_proxy.cut()
    assert [hit(client) for _ in range(3)] == [1, 2, 3]  # the database's own count
    redis_proxy.restore()
    clock.advance(0.2)
    assert hit(client) == 3  # Redis knows its 3 hits, not the database's 3
    flush()
    assert persisted() == 6
    assert hit(client) == 7


def test_without_redis_hits_go_to_the_database(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [hit(client) for _ in range(2)] == [1, 2]
    assert persisted() == 2
    out = io.StringIO()
    call_command("flush_hits", stdout=out)
    assert out.getvalue() == "Flushed 0 hits.\n"
