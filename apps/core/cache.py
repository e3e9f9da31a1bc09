"""The cache (Redis) when it may be down: what uses it degrades instead of failing.

Nothing dbapi keeps in the cache is needed to answer: verified API keys (checked against the
database instead), login failure counts (not throttled meanwhile), pending hits (counted in the
database instead). When Redis fails, a per-process circuit breaker remembers it for
CACHE_RETRY_AFTER seconds, so a dead or hung Redis costs each process one socket timeout per
interval, not one per request, and one warning per outage.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


def cache_errors() -> tuple[type[Exception], ...]:
    """What a cache that is down raises: redis-py's errors (django-redis re-raises them), and the
    socket's own for a connection that dies half way.

    A function, for `except cache_errors():`, which calls it only once something was raised:
    redis-py is loaded by django-redis with the cache, not with this module, so a process that
    never uses the cache (a management command, the embedded default) never loads it.
    """
    from redis import RedisError

    return (RedisError, OSError)


class CircuitBreaker:
    """Remembers, per process, that Redis just failed, so callers skip it for a while."""

    def __init__(self, *, retry_after: float, clock: Callable[[], float] = time.monotonic):
        self.retry_after = retry_after
        self.clock = clock  # a test moves its own instead of waiting out the delay
        self._open_until = 0.0
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        return self.clock() < self._open_until

    def trip(self, error: Exception) -> None:
        metrics.record_dependency_error("cache")
        with self._lock:
            if self.is_open():
                return
            self._open_until = self.clock() + self.retry_after
        logger.warning(
            "The cache (Redis) failed (%s); going without it for %ss",
            error.__class__.__name__,
            self.retry_after,
            extra={"error": str(error)},
        )


@functools.cache
def redis_breaker() -> CircuitBreaker:
    """The process's breaker for the default cache."""
    return CircuitBreaker(retry_after=settings.CACHE_RETRY_AFTER)


def cache_or(default: T, operation: Callable[..., T], *args, **kwargs) -> T:
    """`operation(*args, **kwargs)`, a call on the cache, or `default` while the cache is down."""
    breaker = redis_breaker()
    if breaker.is_open():
        return default
    try:
        return operation(*args, **kwargs)
    except cache_errors() as exc:
        breaker.trip(exc)
        return default


@receiver(setting_changed)
def _forget_breaker(*, setting: str, **kwargs) -> None:
    """Tests that point the cache elsewhere start with a closed breaker."""
    if setting in {"CACHES", "CACHE_RETRY_AFTER"}:
        redis_breaker.cache_clear()
