"""The Redis side of the hit counters.

For each counter Redis holds three keys (under the cache's key prefix):

- `hits:<name>:persisted`: the database total as Redis last learnt it (seeded from the database
  when missing, raised by each flush);
- `hits:<name>:pending`: hits counted since, not yet in the database (one `INCR` per hit);
- `hits:<name>:batches`: a hash of batch id -> hits, for pending hits a flush has taken and not
  yet settled (written to the database, or about to be).

The shown total is persisted + pending + batches, computed inside the same Lua script that counts
the hit, so it is one atomic Redis operation and two hits never show the same number. A set,
`hits:names`, lists the counters Redis knows, for the flush to find them.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.cache import caches
from django.core.signals import setting_changed
from django.dispatch import receiver

from .models import validate_counter_name

if TYPE_CHECKING:
    from redis import Redis
    from redis.commands.core import Script

logger = logging.getLogger(__name__)

# Returns false, counting nothing, when Redis has no persisted total: the caller reads it from
# the database and calls again with it as the seed.
COUNT_HIT = """
local persisted = redis.call('GET', KEYS[1])
if not persisted then
    if ARGV[1] == '' then return false end
    persisted = ARGV[1]
    redis.call('SET', KEYS[1], persisted)
    redis.call('SADD', KEYS[4], ARGV[2])
end
local total = tonumber(persisted) + redis.call('INCR', KEYS[2])
for _, hits in ipairs(redis.call('HVALS', KEYS[3])) do total = total + tonumber(hits) end
return total
"""

READ_COUNTER = """
local pending = tonumber(redis.call('GET', KEYS[2]) or '0')
for _, hits in ipairs(redis.call('HVALS', KEYS[3])) do pending = pending + tonumber(hits) end
return {redis.call('GET', KEYS[1]), pending}
"""

# Flush, step 1: take every pending hit into a new batch, at once.
TAKE_PENDING = """
local hits = redis.call('GETDEL', KEYS[1])
if hits then redis.call('HSET', KEYS[2], ARGV[1], hits) end
return hits
"""

# Flush, step 3, once the batch is in the database: its hits move from the batches to the
# persisted total (only for the flush that removes it, as two flushes may settle one batch).
# Then the persisted total catches up with the database's, which may have counted hits while
# Redis was unreachable; it never goes down. Only with no batch left in flight: the database's
# total may already hold a batch another flush committed and has not settled yet.
SETTLE_BATCH = """
if ARGV[1] ~= '' and redis.call('HDEL', KEYS[2], ARGV[1]) == 1
        and redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('INCRBY', KEYS[1], ARGV[2])
end
if redis.call('HLEN', KEYS[2]) == 0 then
    local persisted = tonumber(redis.call('GET', KEYS[1]) or '-1')
    if tonumber(ARGV[3]) > persisted then
        redis.call('SET', KEYS[1], ARGV[3])
        redis.call('SADD', KEYS[3], ARGV[4])
    end
end
"""


@dataclass(frozen=True)
class CounterKeys:
    persisted: str
    pending: str
    batches: str


class HitStore:
    """The counters' keys and scripts on one Redis client (the cache's own connection pool)."""

    def __init__(self, *, client: Redis, make_key):
        self.client = client
        self.make_key = make_key
        self.names_key = make_key("hits:names")
        self._keys: dict[str, CounterKeys] = {}
        self._script_keys: dict[str, tuple[str, ...]] = {}
        # redis-py is loaded by now (the client is django-redis'), not when this module is.
        from redis.exceptions import NoScriptError

        self._no_script = NoScriptError
        self._count_hit = client.register_script(COUNT_HIT)
        self._read_counter = client.register_script(READ_COUNTER)
        self._take_pending = client.register_script(TAKE_PENDING)
        self._settle_batch = client.register_script(SETTLE_BATCH)

    def keys(self, name: str) -> CounterKeys:
        """The counter's keys, built once per name (a hit should not pay for string formatting)."""
        keys = self._keys.get(name)
        if keys is None:
            validate_counter_name(name)
            keys = CounterKeys(
                persisted=self.make_key(f"hits:{name}:persisted"),
                pending=self.make_key(f"hits:{name}:pending"),
                batches=self.make_key(f"hits:{name}:batches"),
            )
            self._keys[name] = keys
        return keys

    def _counter_keys(self, name: str) -> tuple[str, ...]:
        """KEYS of COUNT_HIT and READ_COUNTER, once per name."""
        found = self._script_keys.get(name)
        if found is None:
            keys = self.keys(name)
            found = self._script_keys[name] = (
                keys.persisted,
                keys.pending,
                keys.batches,
                self.names_key,
            )
        return found

    def _run(self, script: Script, keys: tuple[str, ...], *args: Any) -> Any:
        """What calling `script` does (EVALSHA, and SCRIPT LOAD when Redis lacks the script, as
        after a restart), without the per-call work `Script.__call__` adds for pipelines."""
        try:
            return self.client.evalsha(script.sha, len(keys), *keys, *args)
        except self._no_script:
            script.sha = self.client.script_load(script.script)
            return self.client.evalsha(script.sha, len(keys), *keys, *args)

    def count(self, name: str, *, seed: int | None = None) -> int | None:
        """Count one hit and return the total; None (nothing counted) when Redis holds no
        persisted total for the counter and no `seed` was given."""
        total = self._run(
            self._count_hit, self._counter_keys(name), "" if seed is None else seed, name
        )
        return None if total is None else int(total)

    def read(self, name: str) -> tuple[int | None, int]:
        """(persisted total Redis knows, or None; hits pending, including batches in flight)."""
        persisted, pending = self._run(self._read_counter, self._counter_keys(name))
        return (None if persisted is None else int(persisted)), int(pending)

    def take_pending(self, name: str, *, batch_id: str) -> int:
        """Move every pending hit of the counter into a new batch; return how many."""
        keys = self.keys(name)
        hits = self._run(self._take_pending, (keys.pending, keys.batches), batch_id)
        return int(hits or 0)

    def batches(self, name: str) -> dict[str, int]:
        """Every batch of the counter in flight: this flush's, and any a crashed flush left."""
        raw = self.client.hgetall(self.keys(name).batches)
        return {batch_id.decode(): int(hits) for batch_id, hits in raw.items()}

    def settle(
        self, name: str, *, batch_id: str | None = None, hits: int = 0, database_total: int
    ) -> None:
        """After a batch reached the database (or with no batch: to catch up with it)."""
        keys = self.keys(name)
        self._run(
            self._settle_batch,
            (keys.persisted, keys.batches, self.names_key),
            batch_id or "",
            hits,
            database_total,
            name,
        )

    def names(self) -> set[str]:
        return {name.decode() for name in self.client.smembers(self.names_key)}


@functools.cache
def get_store() -> HitStore | None:
    """The process's store, or None when the cache is not Redis (the embedded default)."""
    cache = caches["default"]
    get_client = getattr(getattr(cache, "client", None), "get_client", None)
    if get_client is None:
        return None
    return HitStore(
        client=get_client(write=True),
        make_key=cache.make_key,
    )


@receiver(setting_changed)
def _forget_store(*, setting: str, **kwargs) -> None:
    """Tests that point the cache elsewhere get a new store."""
    if setting == "CACHES":
        get_store.cache_clear()
