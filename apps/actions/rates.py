"""Per-client rate limits: how a rate is written, and counting calls against it.

A rate is `<calls>/<period>`: `100/s`, `6000/min`, `50000/h`, `100000/d`. Calls are counted in
Redis with one script per call, a sliding log of the calls accepted in the last period, so every
worker and pod shares the count and no window of the period ever holds more than the rate. When
Redis is down, each process counts on its own, against the rate divided by
ACTIONS_RATE_PROCESSES, and says once that it does.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.core.signals import setting_changed
from django.dispatch import receiver

from apps.core.cache import cache_errors, redis_breaker
from apps.core.problems import Problem

logger = logging.getLogger(__name__)

PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*")
# The policy's name in the RateLimit-Policy and RateLimit headers.
POLICY = "client"

# Accept a call when fewer than the limit were accepted in the last window; KEYS[1] holds the
# accepted calls' times (µs, Redis' own clock) in a sorted set. ARGV: limit, window (µs), cost,
# a unique member suffix. Returns {accepted (0/1), remaining, µs until a call leaves the window,
# Redis' clock when the call was counted (µs)}.
TAKE = """
local key, limit, window, cost = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2]
local reset = oldest and (tonumber(oldest) + window - now) or window
if count + cost > limit then
    return {0, limit - count, reset, now}
end
for i = 1, cost do
    redis.call('ZADD', key, now, ARGV[4] .. ':' .. i)
end
redis.call('PEXPIRE', key, math.ceil(window / 1000))
return {1, limit - count - cost, reset, now}
"""


@dataclass(frozen=True)
class Rate:
    """`limit` calls per `period` seconds."""

    limit: int
    period: int

    @classmethod
    def parse(cls, text: str) -> Rate:
        match = RATE.fullmatch(text.lower())
        if not match or match[2] not in PERIODS or int(match[1]) < 1:
            raise ValidationError(
                f"{text!r} is not a rate: write calls per period, e.g. 100/s, 6000/min, 1000/h."
            )
        return cls(limit=int(match[1]), period=PERIODS[match[2]])

    def __str__(self) -> str:
        unit = {1: "s", 60: "min", 3600: "h", 86400: "d"}[self.period]
        return f"{self.limit}/{unit}"


def validate_rate(text: str) -> None:
    """Model field validator: blank, or a rate `Rate.parse` reads."""
    if text:
        Rate.parse(text)


def rate_for(text: str) -> Rate | None:
    """The rate a client's field names, else ACTIONS_DEFAULT_RATE, else none."""
    text = text or settings.ACTIONS_DEFAULT_RATE
    return Rate.parse(text) if text else None


class RateLimited(Problem):
    status_code = 429
    default_detail = "Too many calls for this API key: slow down and retry after Retry-After."
    type_slug = "rate-limited"


@dataclass(frozen=True)
class Allowance:
    """Where a client stands after a call was counted: for the RateLimit headers."""

    rate: Rate
    remaining: int
    reset: float  # seconds until a counted call leaves the window

    def headers(self) -> dict[str, str]:
        reset = max(0, math.ceil(self.reset))
        return {
            "RateLimit-Policy": f'"{POLICY}";q={self.rate.limit};w={self.rate.period}',
            "RateLimit": f'"{POLICY}";r={max(0, self.remaining)};t={reset}',
        }


def take(*, client_id: int, rate: Rate, cost: int = 1) -> Allowance:
    """Count `cost` calls of the client against its rate; raises RateLimited (429) when they
    would go over it, with Retry-After and the RateLimit headers."""
    store = _redis_store()
    if store is not None and not redis_breaker().is_open():
        try:
            accepted, remaining, reset_us, _ = store.take(client_id=client_id, rate=rate, cost=cost)
        except cache_errors() as exc:
            redis_breaker().trip(exc)
        else:
            _local.warned = False  # counted in Redis again: say so if it fails again
            return _answer(rate, bool(accepted), remaining, reset_us / 1e6)
    accepted, remaining, reset = _local.take(client_id=client_id, rate=rate, cost=cost)
    return _answer(rate, accepted, remaining, reset)


def _answer(rate: Rate, accepted: bool, remaining: int, reset: float) -> Allowance:
    allowance = Allowance(rate=rate, remaining=remaining if accepted else 0, reset=reset)
    if not accepted:
        headers = allowance.headers()
        headers["Retry-After"] = str(max(1, math.ceil(reset)))
        raise RateLimited(headers=headers)
    return allowance


class RedisRates:
    """The sliding logs in Redis, on the cache's own connection pool."""

    def __init__(self, cache):
        self.client = cache.client.get_client(write=True)
        self.make_key = cache.make_key
        self.script = self.client.register_script(TAKE)

    def take(self, *, client_id: int, rate: Rate, cost: int) -> tuple[int, int, int, int]:
        """(accepted 0/1, calls remaining, µs until one leaves the window, Redis' clock in µs
        when the call was counted)."""
        accepted, remaining, reset, at = self.script(
            keys=[self.make_key(f"ratelimit:{client_id}")],
            args=[rate.limit, rate.period * 1_000_000, cost, secrets.token_hex(8)],
        )
        return int(accepted), int(remaining), int(reset), int(at)


@functools.cache
def _redis_store() -> RedisRates | None:
    """The process's Redis counter, or None when the cache is not Redis (the embedded default)."""
    cache = caches["default"]
    if getattr(getattr(cache, "client", None), "get_client", None) is None:
        return None
    return RedisRates(cache)


class LocalRates:
    """Sliding logs in this process, for when Redis cannot count: each process allows its
    share of the rate (ACTIONS_RATE_PROCESSES processes share it), so the whole stays near it."""

    def __init__(self) -> None:
        self.logs: dict[int, collections.deque[float]] = {}
        self.lock = threading.Lock()
        self.warned = False

    def take(self, *, client_id: int, rate: Rate, cost: int) -> tuple[bool, int, float]:
        limit = max(1, rate.limit // max(1, settings.ACTIONS_RATE_PROCESSES))
        now = time.monotonic()
        with self.lock:
            if not self.warned:
                self.warned = True
                logger.warning(
                    "Rate limits are counted per process (the cache is not available): each "
                    "allows 1/%s of a client's rate",
                    settings.ACTIONS_RATE_PROCESSES,
                )
            log = self.logs.setdefault(client_id, collections.deque())
            while log and log[0] <= now - rate.period:
                log.popleft()
            reset = (log[0] + rate.period - now) if log else rate.period
            if len(log) + cost > limit:
                return False, limit - len(log), reset
            log.extend([now] * cost)
            return True, limit - len(log), reset


_local = LocalRates()


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs) -> None:
    """Tests that point the cache elsewhere get new counters."""
    if setting in {"CACHES", "ACTIONS_RATE_PROCESSES"}:
        _redis_store.cache_clear()
        _local.logs.clear()
        _local.warned = False
