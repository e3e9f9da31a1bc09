"""The limits a password check passes before the password is hashed.

A password hash is meant to be slow (Django's PBKDF2 is a million rounds), so a flood of wrong
passwords would otherwise take the workers' whole time. Before hashing, a check must pass:

1. its client address: at most LOGIN_ADDRESS_LIMIT failed checks per LOGIN_ADDRESS_WINDOW
   seconds (counted in the cache, shared by every process; per process while Redis is down);
2. its username: at most LOGIN_FAILURE_LIMIT wrong passwords per LOGIN_FAILURE_WINDOW (in the
   cache; not counted while Redis is down);
3. the process: at most LOGIN_PROCESS_HASH_RATE hashes a second (LOGIN_PROCESS_HASH_BURST at
   once), whoever asks, so that a flood from many addresses leaves the workers time for others.

Any of them refusing raises LoginThrottled (429 with Retry-After) and nothing is hashed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from django.dispatch import receiver

from apps.core.cache import cache_or
from apps.core.throttles import ProcessRate, WindowCounter

logger = logging.getLogger(__name__)


class LoginThrottled(Exception):
    """Too many password checks (for this address, this username, or this process): no password
    is checked for `retry_after` seconds."""

    def __init__(self, retry_after: int):
        super().__init__(f"login throttled for {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class PasswordCheck:
    """A check that passed the limits: report how it ended with `failed()` or `succeeded()`."""

    address: str | None
    username_keys: tuple[str, str]

    def failed(self) -> None:
        """A wrong password: it stays counted for the address, and counts for the username."""
        cache_or(None, _count_username_failure, *self.username_keys)

    def succeeded(self) -> None:
        """A right password: the username's failures are forgiven, and the address gets its
        attempt back (only failures count against it)."""
        cache_or(None, cache.delete_many, list(self.username_keys))
        if self.address and settings.LOGIN_ADDRESS_LIMIT > 0:
            address_failures().remove(self.address)


def start_password_check(*, address: str | None, username: str) -> PasswordCheck:
    """Let a password be checked for `username` from `address`, or raise LoginThrottled.

    The address's attempt is counted before the password is checked (atomically, so concurrent
    attempts cannot all slip under the limit); a right password gives it back.
    """
    if address and settings.LOGIN_ADDRESS_LIMIT > 0:
        counted = address_failures().add(address)
        if counted.count > settings.LOGIN_ADDRESS_LIMIT:
            if counted.count == settings.LOGIN_ADDRESS_LIMIT + 1:
                logger.warning(
                    "Password logins from one address throttled after failures",
                    extra={"client_address": address},
                )
            raise LoginThrottled(counted.retry_after)
    username_keys = _username_keys(username)
    retry_after = cache_or(None, _username_throttled_for, *username_keys)
    if retry_after is not None:
        raise LoginThrottled(retry_after)
    wait = process_hashes().take()
    if wait:
        if address and settings.LOGIN_ADDRESS_LIMIT > 0:
            address_failures().remove(address)  # the process was busy, not the address wrong
        raise LoginThrottled(wait)
    return PasswordCheck(address=address, username_keys=username_keys)


@functools.cache
def address_failures() -> WindowCounter:
    return WindowCounter(prefix="login-address", window=settings.LOGIN_ADDRESS_WINDOW)


@functools.cache
def process_hashes() -> ProcessRate:
    """This process's budget of password hashes."""
    return ProcessRate(
        rate=settings.LOGIN_PROCESS_HASH_RATE, burst=settings.LOGIN_PROCESS_HASH_BURST
    )


@receiver(setting_changed)
def _forget_limits(*, setting: str, **kwargs) -> None:
    """Tests that change a limit get counters that follow it."""
    if setting in {"LOGIN_ADDRESS_WINDOW", "LOGIN_ADDRESS_LIMIT"}:
        address_failures.cache_clear()
    if setting in {"LOGIN_PROCESS_HASH_RATE", "LOGIN_PROCESS_HASH_BURST"}:
        process_hashes.cache_clear()


# --- Per username ---------------------------------------------------------------------------------


def _username_keys(username: str) -> tuple[str, str]:
    # Hashed: usernames may hold characters a cache key should not, and stay out of Redis.
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{digest}", f"login-failures-until:{digest}"


def _username_throttled_for(count_key: str, until_key: str) -> int | None:
    """Seconds until this username may try a password again; None when it may now."""
    if (cache.get(count_key) or 0) < settings.LOGIN_FAILURE_LIMIT:
        return None
    until = cache.get(until_key) or time.time() + settings.LOGIN_FAILURE_WINDOW
    return max(1, math.ceil(until - time.time()))


def _count_username_failure(count_key: str, until_key: str) -> None:
    window = settings.LOGIN_FAILURE_WINDOW
    cache.add(until_key, time.time() + window, timeout=window)
    cache.add(count_key, 0, timeout=window)
    try:
        count = cache.incr(count_key)  # atomic: concurrent failures are all counted
    except ValueError:  # the window ended between add and incr
        cache.set(count_key, count := 1, timeout=window)
    if count == settings.LOGIN_FAILURE_LIMIT:
        logger.warning("Password logins throttled after repeated failures")
