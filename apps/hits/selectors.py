"""Reading the hit counters without counting."""

from __future__ import annotations

from redis import RedisError

from .models import HitCounter
from .store import get_store


def persisted_total(name: str) -> int:
    """The hits of the counter that are in the database (0 for a counter it does not know)."""
    total = HitCounter.objects.filter(name=name).values_list("total", flat=True).first()
    return total or 0


def pending_hits(name: str) -> int | None:
    """Hits counted in Redis and not in the database yet; None when Redis cannot tell."""
    store = get_store()
    if store is None:
        return 0  # without Redis every hit goes straight to the database
    if store.breaker.is_open():
        return None
    try:
        _, pending = store.read(name)
    except RedisError as exc:
        store.breaker.trip(exc)
        return None
    return pending
