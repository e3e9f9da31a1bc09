"""API client keys: issue them, check them on every call, revoke them.

A key is `<prefix>.<secret>`: a 12-character random prefix, stored in clear to find the row, and
a 256-bit random secret. Only the SHA-256 digest of the whole key is stored; a password hasher's
deliberate slowness would add hundreds of milliseconds to every call and buys nothing for a
random 256-bit value.

A verified key is cached by its digest for API_KEY_CACHE_SECONDS, so a call costs one cache read
and no query. Revoking or changing a client drops its entry at once; when the cache cannot be
reached at that moment (Redis restarting, paused, cut off), the entry still ends with its short
lifetime, so a revocation never waits on the cache for longer than that.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache, caches
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models import Q
from django.dispatch import receiver
from django.utils import timezone

from apps.accounts.credentials import secret_digest
from apps.core.cache import cache_or

from .models import ApiClient
from .rates import Rate, rate_for

PREFIX_LENGTH = 12
SECRET_BYTES = 32  # 256 bits


TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class Caller:
    """The API client behind a verified key: what a request needs to know, and no more."""

    id: int
    name: str
    allowed_modules: frozenset[str]
    rate: Rate | None = None  # its own, or ACTIONS_DEFAULT_RATE; None: unlimited

    def may_call(self, module: str) -> bool:
        return not self.allowed_modules or module in self.allowed_modules


def _cache_key(digest: str) -> str:
    # The version changes with Caller's fields, so processes of two releases never read each
    # other's entries while a deployment rolls.
    return f"apiclient:v2:{digest}"


def create_api_client(
    *, name: str, allowed_modules: list[str] | None = None, rate: str = ""
) -> tuple[ApiClient, str]:
    """Create a client; returns it with its key, which is shown once and never stored."""
    client = ApiClient(name=name, allowed_modules=sorted(set(allowed_modules or [])), rate=rate)
    key = assign_new_key(client)
    client.full_clean()
    client.save()
    return client, key


def assign_new_key(client: ApiClient) -> str:
    """Give the client a fresh key (the caller saves it); returns the key."""
    forget_api_client(client)
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    key = f"{prefix}.{secrets.token_urlsafe(SECRET_BYTES)}"
    client.key_prefix = prefix
    client.key_hash = secret_digest(key)
    return key


def forget_api_client(client: ApiClient) -> bool:
    """Drop the client's cached verification so that a change (revocation, modules) applies now.

    Deleted again once the change commits, in case a call verified the old row and cached it
    in between. Returns False when the cache could not be reached: the change then applies when
    the entry's lifetime (API_KEY_CACHE_SECONDS) ends.
    """
    if not client.key_hash:
        return True
    cache_key = _cache_key(client.key_hash)
    reached = cache_or(False, _delete, cache_key)
    transaction.on_commit(lambda: cache_or(False, _delete, cache_key))
    return reached


def _delete(cache_key: str) -> bool:
    cache.delete(cache_key)
    return True


def revoke_api_client(client: ApiClient) -> bool:
    """Revoke the client's key; False when the cache could not be told (see forget_api_client)."""
    client.is_active = False
    client.save(update_fields=["is_active"])
    return forget_api_client(client)


def authenticate_key(key: str) -> Caller | None:
    """The caller behind a key, or None when the key is unknown, malformed or revoked.

    A cached verification costs one cache read and no query. The entry expires after
    API_KEY_CACHE_SECONDS; verifying again is also when `last_used_at` is refreshed, so it is
    written at most once a minute per client rather than on every call.
    """
    prefix, dot, secret = key.partition(".")
    if not dot or len(prefix) != PREFIX_LENGTH or not secret:
        return None
    digest = secret_digest(key)
    caller = cache_or(None, _cached_caller, digest)  # down: verified in the database
    if caller is None:
        caller = _verify(prefix, digest)
    return caller


def _cached_caller(digest: str) -> Caller | None:
    store = _redis_callers()
    if store is None:
        return cache.get(_cache_key(digest))
    return store.get(digest)


class RedisCallers:
    """The cached verifications read from Redis, as every call reads one.

    What `cache.get` returns, by one GET on django-redis' own client (of the replica a read
    would use), without the backend's layers around it: its proxy, the key's CacheKey, the
    decoder trying the bytes as an integer first. The entries are written by `cache.set`.
    A Caller is frozen, so each stored value is unpickled once and the Caller shared.
    """

    LIMIT = 1024  # keys and values kept (a few per client; bounded all the same)

    def __init__(self, cache):
        self.client = cache.client
        self.make_key = cache.make_key
        self.keys: dict[str, str] = {}
        self.decoded: dict[bytes, Caller] = {}

    def get(self, digest: str) -> Caller | None:
        key = self.keys.get(digest)
        if key is None:
            key = self.make_key(_cache_key(digest))
            _keep(self.keys, digest, key)
        value = self.client.get_client(write=False).get(key)
        if value is None:
            return None
        caller = self.decoded.get(value)
        if caller is None:
            caller = self.client.decode(value)
            _keep(self.decoded, value, caller)
        return caller


def _keep(found: dict, key, value) -> None:
    if len(found) >= RedisCallers.LIMIT:
        found.clear()
    found[key] = value


@functools.cache
def _redis_callers() -> RedisCallers | None:
    """The process's reader, or None when the cache is not Redis (the embedded default)."""
    default = caches["default"]
    if getattr(getattr(default, "client", None), "get_client", None) is None:
        return None
    return RedisCallers(default)


@receiver(setting_changed)
def _forget_callers(*, setting: str, **kwargs) -> None:
    """Tests that point the cache elsewhere read from there."""
    if setting == "CACHES":
        _redis_callers.cache_clear()


def _verify(prefix: str, digest: str) -> Caller | None:
    client = (
        ApiClient.objects.filter(key_prefix=prefix, is_active=True)
        .only("id", "name", "allowed_modules", "rate", "key_hash", "last_used_at")
        .first()
    )
    if client is None or not hmac.compare_digest(client.key_hash, digest):
        return None
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at >= TOUCH_INTERVAL:
        # Conditional, so that workers verifying at the same moment write only once.
        ApiClient.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - TOUCH_INTERVAL),
            pk=client.pk,
        ).update(last_used_at=now)
    caller = Caller(
        id=client.id,
        name=client.name,
        allowed_modules=frozenset(client.allowed_modules),
        rate=rate_for(client.rate),
    )
    cache_or(None, cache.set, _cache_key(digest), caller, timeout=settings.API_KEY_CACHE_SECONDS)
    return caller
