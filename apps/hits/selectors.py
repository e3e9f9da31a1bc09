"""Reading the hit counters without counting."""

from __future__ import annotations

from apps.core.cache import cache_or

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
    _, pending = cache_or((None, None), store.read, name)
    return pending


def all_pending_hits() -> int | None:
    """Hits of every counter not in the database yet; None when Redis cannot tell."""
    store = get_store()
    if store is None:
        return 0
    return cache_or(None, lambda: sum(store.read(name)[1] for name in store.names()))
