"""`manage.py flush_hits` moves the pending hits into the database: each exactly once, even when
it crashes half way or runs twice at once."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from apps.hits.models import FlushedBatch, HitCounter
from apps.hits.selectors import pending_hits
from apps.hits.signals import flush_step
from tests.hits.conftest import (
    SimulatedCrash,
    crash,
    flush_stopping_at,
    in_background,
    in_threads,
)
from tests.servers import PROJECT_DIR, cache_at, free_port, project_env


def hit(client: Client, times: int = 1) -> int:
    """Count `times` hits on / and return the last total shown."""
    for _ in range(times):
        total = client.get("/", headers={"Accept": "application/json"}).json()["hits"]
    return total


def persisted(name: str = "root") -> int:
    return HitCounter.objects.get(name=name).total


def flush(*args: str) -> str:
    out = io.StringIO()
    call_command("flush_hits", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_flush_moves_the_pending_hits_into_the_database(client):
    hit(client, times=5)
    assert flush() == "Flushed 5 hits.\n"
    assert persisted() == 5
    assert pending_hits("root") == 0


@pytest.mark.django_db
def test_totals_continue_after_a_flush(client):
    hit(client, times=5)
    flush()
    assert hit(client) == 6


@pytest.mark.django_db
def test_flush_lists_the_counters_with_more_verbosity(client):
    hit(client, times=2)
    assert "root: +2" in flush("--verbosity", "2")


@pytest.mark.django_db
def test_a_second_flush_adds_nothing(client):
    hit(client, times=5)
    flush()
    assert flush() == "Flushed 0 hits.\n"
    assert persisted() == 5


@pytest.mark.django_db
@pytest.mark.parametrize("step", ["taken", "recorded"])
def test_a_flush_that_crashes_before_committing_loses_no_hit(client, step):
    hit(client, times=5)
    with flush_stopping_at(step, crash), pytest.raises(SimulatedCrash):
        flush()
    assert persisted() == 0
    assert hit(client) == 6  # the batch in flight is still shown
    assert flush() == "Flushed 6 hits.\n"
    assert persisted() == 6
    assert hit(client) == 7


@pytest.mark.django_db
def test_a_flush_that_crashes_after_committing_counts_no_hit_twice(client):
    hit(client, times=5)
    with flush_stopping_at("applied", crash), pytest.raises(SimulatedCrash):
        flush()
    assert persisted() == 5
    assert hit(client) == 6  # not 11: the batch left in Redis is known to be in the database
    assert flush() == "Flushed 1 hit.\n"
    assert persisted() == 6
    assert hit(client) == 7


@pytest.mark.django_db
def test_flush_remembers_each_batch_it_added(client):
    hit(client, times=3)
    flush()
    [batch] = FlushedBatch.objects.all()
    assert batch.counter.name == "root"
    assert batch.hits == 3


@pytest.mark.django_db
def test_flush_forgets_batches_older_than_the_retention(client, settings):
    settings.HITS_BATCH_RETENTION_DAYS = 2
    hit(client, times=3)
    flush()
    FlushedBatch.objects.update(flushed_at=timezone.now() - timedelta(days=2, seconds=1))
    hit(client)
    flush()
    assert [batch.hits for batch in FlushedBatch.objects.all()] == [1]


@pytest.mark.django_db
def test_flush_fails_loudly_when_redis_is_down(client, settings, dead_redis_url):
    settings.CACHES = cache_at(dead_redis_url)
    with pytest.raises(CommandError, match="Redis did not answer"):
        flush()


@pytest.mark.django_db
def test_flush_fails_loudly_when_the_database_is_down_and_keeps_the_hits(client):
    hit(client, times=3)
    database_down = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    result = subprocess.run(
        [sys.executable, "manage.py", "flush_hits"],
        cwd=PROJECT_DIR,
        env=project_env(DATABASE_URL=database_down),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "The database did not answer" in result.stderr
    assert flush() == "Flushed 3 hits.\n"


@pytest.mark.django_db(transaction=True)
def test_two_flushes_at_once_add_each_hit_once(client):
    """One flush stops after taking its batch; a second one runs whole meanwhile."""
    hit(client, times=5)
    first_took, second_done = threading.Event(), threading.Event()

    def wait_for_the_second() -> None:
        first_took.set()
        assert second_done.wait(10)

    with flush_stopping_at("taken", wait_for_the_second):
        first = in_background(flush)
        assert first_took.wait(10)
        hit(client, times=2)
        assert flush() == "Flushed 7 hits.\n"  # its own 2, and the 5 the first one took
        second_done.set()
        assert first.result(10) == "Flushed 0 hits.\n"
    assert persisted() == 7
    assert hit(client) == 8


def waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_flush_waits_for_another_adding_the_same_batch_then_skips_it(client):
    """The first flush stops inside its transaction; the second reaches the same batch, waits
    on its id until the first commits, and then does not add it again."""
    hit(client, times=5)
    first_recorded, release_first = threading.Event(), threading.Event()

    def hold_the_transaction() -> None:
        first_recorded.set()
        assert release_first.wait(10)

    with flush_stopping_at("recorded", hold_the_transaction):
        first = in_background(flush)
        assert first_recorded.wait(10)
        second = in_background(flush)
        deadline = time.monotonic() + 10
        while not waiting_on_a_lock() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting_on_a_lock() == 1
        release_first.set()
        assert first.result(10) == "Flushed 5 hits.\n"
        assert second.result(10) == "Flushed 0 hits.\n"
    assert persisted() == 5
    assert hit(client) == 6


@pytest.mark.django_db(transaction=True)
def test_many_flushes_while_hits_are_counted_lose_and_double_nothing():
    per_thread, threads = 30, 4
    counting = threading.Event()
    counting.set()

    def hit_many() -> list[int]:
        return [hit(Client()) for _ in range(per_thread)]

    def flush_until_done() -> int:
        runs = 0
        while counting.is_set():
            flush()
            runs += 1
        return runs

    flushers = [in_background(flush_until_done) for _ in range(2)]
    shown = [total for totals in in_threads(hit_many, count=threads) for total in totals]
    counting.clear()
    assert all(flusher.result(30) > 0 for flusher in flushers)
    flush()
    assert sorted(shown) == list(range(1, per_thread * threads + 1))
    assert persisted() == per_thread * threads
    assert FlushedBatch.objects.count() > 1


@pytest.mark.django_db(transaction=True)
def test_overlapping_flushes_never_show_a_batch_twice(client):
    """The first flush commits batch x and stops before settling it in Redis. A second flush
    settles x for it, commits batch y and stops too. Then the first settles: the database total
    it read includes y, which Redis still holds as in flight, so it must not raise the persisted
    total to it."""
    paused: dict[str, threading.Event] = {"first": threading.Event(), "second": threading.Event()}
    release = {"first": threading.Event(), "second": threading.Event()}
    first_batch: list[str] = []

    def pause(sender, *, step: str, batch_id: str | None = None, **kwargs) -> None:
        if step != "applied":
            return
        if not first_batch:
            first_batch.append(batch_id)
            which = "first"
        elif batch_id != first_batch[0] and not paused["second"].is_set():
            which = "second"
        else:
            return
        paused[which].set()
        assert release[which].wait(10)

    flush_step.connect(pause, weak=False)
    try:
        hit(client, times=5)
        first = in_background(flush)
        assert paused["first"].wait(10)
        hit(client, times=3)
        second = in_background(flush)
        assert paused["second"].wait(10)
        release["first"].set()
        assert first.result(10) == "Flushed 5 hits.\n"
        release["second"].set()
        assert second.result(10) == "Flushed 3 hits.\n"
    finally:
        flush_step.disconnect(pause)
    assert persisted() == 8
    assert hit(client) == 9
