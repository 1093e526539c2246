"""The JSON result tiers (retrieval and answers), looked up in one round trip.

Retrieval and answer keys embed the corpus version, so a commit makes every older entry
unreachable at once; TTLs then reclaim them. Reads never SCAN; only stats and purge do.

Every key here lives on the cache Redis (RAG_CACHE_REDIS_URL); corpus versions live on the
broker (RAG_REDIS_URL). When both are one server a lookup is one script, else two calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import redis

from shared.cache.flight import single_flight
from shared.keys import Keys


def digest(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:40]


# One round trip for a lookup: read the corpus version, then the entry stored under it, and
# count the hit or miss. (Keys are built inside the script: fine on one Redis, not a Cluster.)
LOOKUP_SCRIPT = """
local version = redis.call('GET', KEYS[1]) or '0'
local value = redis.call('GET', ARGV[1] .. version .. ':' .. ARGV[2])
if value then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
else
  redis.call('HINCRBY', KEYS[2], 'misses', 1)
end
return {version, value}
"""

# The same without the version, read from the broker beforehand: KEYS = entry, counters.
ENTRY_SCRIPT = """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('HINCRBY', KEYS[2], 'hits', 1)
else
  redis.call('HINCRBY', KEYS[2], 'misses', 1)
end
return value
"""


class ResultCache:
    """A JSON tier (retrieval or answers): entries live under the corpus version they saw.

    `client` is the cache Redis; `versions` the broker, where corpus versions live, if it is
    another server."""

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        tier: str,
        ttl_s: int,
        versions: redis.Redis | None = None,
    ) -> None:
        self._r = client
        self._k = keys
        self.tier = tier
        self._ttl = ttl_s
        self._versions = None if versions is client else versions
        self._lookup = client.register_script(LOOKUP_SCRIPT)
        self._entry = client.register_script(ENTRY_SCRIPT)

    def lookup_args(self, corpus: str, *parts: Any) -> tuple[list[str], list[str]]:
        """KEYS and ARGV of LOOKUP_SCRIPT (also used by the API's async fast path)."""
        return (
            [self._k.corpus_version(corpus), self._k.cache_stats(self.tier)],
            [self._k.cache(self.tier, f"{corpus}:"), digest(*parts)],
        )

    def version_key(self, corpus: str) -> str:
        """The broker key of the corpus version (for a lookup in two calls)."""
        return self._k.corpus_version(corpus)

    def entry_keys(self, corpus: str, version: int, *parts: Any) -> list[str]:
        """KEYS of ENTRY_SCRIPT, once the version is known."""
        return [self.key(corpus, version, *parts), self._k.cache_stats(self.tier)]

    def key(self, corpus: str, version: int, *parts: Any) -> str:
        return self._k.cache(self.tier, f"{corpus}:{version}:{digest(*parts)}")

    def lookup(self, corpus: str, *parts: Any) -> tuple[int, bytes | None]:
        """(the corpus version now, the entry cached under it or None), counting hit/miss."""
        if self._versions is not None:
            version = int(self._versions.get(self.version_key(corpus)) or 0)
            return version, self._entry(keys=self.entry_keys(corpus, version, *parts))
        keys, args = self.lookup_args(corpus, *parts)
        version, value = self._lookup(keys=keys, args=args)
        return int(version), value

    def get(self, key: str) -> bytes | None:
        return self._r.get(key)  # type: ignore[no-any-return]

    def put(self, key: str, value: Any) -> bytes:
        raw = json.dumps(value, separators=(",", ":")).encode()
        self._r.set(key, raw, ex=self._ttl)
        return raw

    def get_or_compute(
        self,
        key: str,
        compute: Callable[[], Any],
        *,
        timeout_s: float,
        store_if: Callable[[Any], bool] | None = None,
    ) -> tuple[Any, bool]:
        """(value, computed here): of identical concurrent misses, one computes, in any
        process; the others wait for its entry. A value `store_if` refuses is returned but
        not cached (waiters then compute their own)."""

        def compute_and_store() -> Any:
            value = compute()
            if store_if is None or store_if(value):
                self.put(key, value)
            self._r.hincrby(self._k.cache_stats(self.tier), "computed", 1)
            return value

        def lookup() -> Any | None:
            raw = self.get(key)
            return None if raw is None else json.loads(raw)

        return single_flight(
            self._r,
            flight_key=self._k.flight(key.rsplit(":", 1)[-1]),
            lookup=lookup,
            compute=compute_and_store,
            timeout_s=timeout_s,
        )
