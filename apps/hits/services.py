"""Counting hits, and flushing the hits counted in Redis into the database.

A hit is one atomic Redis script (`store.COUNT_HIT`): no database query, no read-modify-write.
When Redis fails, hits go straight to the database for a few seconds (the cache's circuit
breaker, apps.core.cache), so a dead Redis costs one timeout per process, not one per hit.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.core import metrics
from apps.core.cache import cache_errors, redis_breaker

from .models import FlushedBatch, HitCounter, validate_counter_name
from .selectors import persisted_total
from .signals import flush_step
from .store import HitStore, get_store

ROOT_COUNTER = "root"


def count_hit(name: str = ROOT_COUNTER) -> int:
    """Count one hit on the counter and return its total: persisted + pending.

    While Redis is down the total shown is the database's alone: hits still pending in Redis come
    back into it at the first flush after Redis does.
    """
    metrics.record_hit()
    store, breaker = get_store(), redis_breaker()
    if store is not None and not breaker.is_open():
        try:
            return _count_in_redis(store, name)
        except cache_errors() as exc:
            breaker.trip(exc)
    return _count_in_database(name)


def _count_in_redis(store: HitStore, name: str) -> int:
    total = store.count(name)
    if total is None:  # a new counter, or a Redis that lost its memory: start from the database
        total = store.count(name, seed=_create_counter(name).total)
    return total


def _create_counter(name: str) -> HitCounter:
    """The counter's row, made when it is first counted so the admin lists it at once."""
    validate_counter_name(name)
    counter, _ = HitCounter.objects.get_or_create(name=name)
    return counter


def _count_in_database(name: str) -> int:
    with transaction.atomic():
        _add_hits(name, hits=1)
        # The UPDATE holds the row's lock until commit, so this is our own hit's total.
        return persisted_total(name)


def _add_hits(name: str, *, hits: int) -> None:
    """Add to the counter with an F() update: the database adds, so concurrent writers never
    overwrite each other."""
    counters = HitCounter.objects.filter(name=name)
    if not counters.update(total=F("total") + hits, updated=timezone.now()):
        _create_counter(name)
        counters.update(total=F("total") + hits, updated=timezone.now())


def flush_hits() -> dict[str, int]:
    """Move the hits pending in Redis into the database; return the hits added per counter.

    Safe to interrupt at any point and to run several at once (see `_flush_counter`). Raises
    RedisError when Redis does not answer.
    """
    store = get_store()
    if store is None:
        return {}  # without Redis nothing is ever pending
    names = store.names() | set(HitCounter.objects.values_list("name", flat=True))
    added = {name: _flush_counter(store, name) for name in sorted(names)}
    _forget_old_batches()
    return added


def _flush_counter(store: HitStore, name: str) -> int:
    """Flush one counter in three steps, each atomic on its own.

    1. Redis moves the pending hits into a new batch (id -> hits).
    2. One transaction records the batch id and adds its hits, unless the id is recorded already.
    3. Redis moves the batch's hits into the persisted total it shows.

    Every batch found in Redis goes through 2 and 3, including those a crashed flush left: after a
    crash in 1-2 the transaction never committed and the batch is added now; after a crash in 2-3
    its id is recorded and it is only settled. Two flushes on one batch meet on the id's primary
    key: the second waits for the first to commit, then finds the id.
    """
    new_batch = uuid.uuid4().hex
    if store.take_pending(name, batch_id=new_batch):
        flush_step.send(sender=HitCounter, step="taken", name=name, batch_id=new_batch)
    added = 0
    batches = store.batches(name)
    for batch_id, hits in batches.items():
        if _apply_batch(name, batch_id=batch_id, hits=hits):
            added += hits
        flush_step.send(sender=HitCounter, step="applied", name=name, batch_id=batch_id)
        store.settle(name, batch_id=batch_id, hits=hits, database_total=persisted_total(name))
    if not batches:  # nothing to add, but the database may have counted while Redis was down
        store.settle(name, database_total=persisted_total(name))
    return added


def _apply_batch(name: str, *, batch_id: str, hits: int) -> bool:
    """Add the batch's hits to the counter unless it was added before; True if added now."""
    with transaction.atomic():
        counter = _create_counter(name)
        try:
            with transaction.atomic():
                FlushedBatch.objects.create(id=batch_id, counter=counter, hits=hits)
        except IntegrityError:
            return False  # recorded by an earlier flush, or one that just committed
        flush_step.send(sender=HitCounter, step="recorded", name=name, batch_id=batch_id)
        _add_hits(name, hits=hits)
    return True


def _forget_old_batches() -> None:
    """Batch ids are only needed while their batch may still be in Redis: minutes, not days."""
    cutoff = timezone.now() - timedelta(days=settings.HITS_BATCH_RETENTION_DAYS)
    FlushedBatch.objects.filter(flushed_at__lt=cutoff).delete()
