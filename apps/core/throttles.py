"""Limits checked before costly work is done: counts per key in a window, and a rate per process.

`WindowCounter` counts attempts per key (a client address, say) in fixed windows, in the cache,
so every process sees the same count: one atomic INCR. While the cache is down each process
counts on its own (apps/core/cache.py's breaker), so a limit still holds, per process.

`ProcessRate` caps how often this process does something, whatever the key (a token bucket):
what a flood from many keys cannot get past.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.core.cache import cache

from .cache import cache_or

# Keys a process counts on its own while the cache is down, per window: past that (a flood from
# very many keys), it starts the window's counts again rather than grow without end.
LOCAL_KEYS_LIMIT = 10_000


@dataclass(frozen=True)
class Count:
    """How many attempts the key made in the current window, this one included, and the whole
    seconds until the window ends."""

    count: int
    retry_after: int


class WindowCounter:
    """Attempts per key in fixed windows of `window` seconds."""

    def __init__(self, *, prefix: str, window: float, clock: Callable[[], float] = time.time):
        self.prefix = prefix
        self.window = window
        self.clock = clock
        self._local: dict[str, int] = {}
        self._local_slot: int | None = None
        self._lock = threading.Lock()

    def add(self, key: str) -> Count:
        """Count one attempt by `key`."""
        now = self.clock()
        slot = int(now // self.window)
        name = self._name(key, slot)
        count = cache_or(None, self._cache_add, name)
        if count is None:
            count = self._local_add(name, slot)
        retry_after = max(1, math.ceil((slot + 1) * self.window - now))
        return Count(count=count, retry_after=retry_after)

    def remove(self, key: str) -> None:
        """Take back one attempt of `key` in the current window (one that turned out not to
        count, such as a right password)."""
        name = self._name(key, int(self.clock() // self.window))
        if cache_or(False, self._cache_remove, name) is False:
            with self._lock:
                if self._local.get(name, 0) > 0:
                    self._local[name] -= 1

    def _name(self, key: str, slot: int) -> str:
        # Hashed: keys may hold characters a cache key should not, and stay out of Redis.
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return f"{self.prefix}:{digest}:{slot}"

    def _cache_add(self, name: str) -> int:
        timeout = math.ceil(self.window) + 1
        cache.add(name, 0, timeout=timeout)
        try:
            return cache.incr(name)  # atomic: concurrent attempts are all counted
        except ValueError:  # expired between add and incr
            cache.set(name, 1, timeout=timeout)
            return 1

    @staticmethod
    def _cache_remove(name: str) -> bool:
        with contextlib.suppress(ValueError):  # the window ended meanwhile: nothing to take back
            cache.decr(name)
        return True

    def _local_add(self, name: str, slot: int) -> int:
        with self._lock:
            if slot != self._local_slot or len(self._local) >= LOCAL_KEYS_LIMIT:
                self._local, self._local_slot = {}, slot
            self._local[name] = count = self._local.get(name, 0) + 1
            return count


class ProcessRate:
    """At most `rate` events a second in this process, `burst` of them at once (a token bucket).
    A rate of 0 or less sets no limit."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> int:
        """0 when the event may happen now (and it is counted); otherwise the whole seconds until
        it may."""
        if self.rate <= 0:
            return 0
        with self._lock:
            now = self.clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0
            return max(1, math.ceil((1 - self._tokens) / self.rate))
