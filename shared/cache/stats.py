"""Hit/miss counters, sizes and purge of the cache tiers (the only code that SCANs them)."""

from __future__ import annotations

from typing import Any

import redis

from shared.keys import Keys

TIERS = ("embeddings", "retrieval", "answers")


class CacheStats:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._r = client
        self._k = keys

    def count(self, tier: str, *, hits: int = 0, misses: int = 0) -> None:
        if hits or misses:
            pipe = self._r.pipeline(transaction=False)
            if hits:
                pipe.hincrby(self._k.cache_stats(tier), "hits", hits)
            if misses:
                pipe.hincrby(self._k.cache_stats(tier), "misses", misses)
            pipe.execute()

    def counters(self) -> dict[str, dict[str, int]]:
        """Hits and misses of each tier, without scanning keys (for /metrics)."""
        pipe = self._r.pipeline(transaction=False)
        for tier in TIERS:
            pipe.hmget(self._k.cache_stats(tier), "hits", "misses")
        return {
            tier: {"hits": int(hits or 0), "misses": int(misses or 0)}
            for tier, (hits, misses) in zip(TIERS, pipe.execute(), strict=True)
        }

    def tier(self, tier: str) -> dict[str, Any]:
        keys = 0
        size = 0
        for key in self._r.scan_iter(match=self._k.cache_pattern(tier), count=1000):
            keys += 1
            size += int(self._r.memory_usage(key) or 0)
        counters = self._r.hgetall(self._k.cache_stats(tier))
        hits = int(counters.get(b"hits", 0))
        misses = int(counters.get(b"misses", 0))
        lookups = hits + misses
        return {
            "keys": keys,
            "bytes": size,
            "hits": hits,
            "misses": misses,
            "hit_rate": round(hits / lookups, 4) if lookups else 0.0,
            "computed": int(counters.get(b"computed", 0)),
        }

    def all(self) -> dict[str, Any]:
        tiers = {t: self.tier(t) for t in TIERS}
        totals = {
            f: sum(t[f] for t in tiers.values()) for f in ("keys", "bytes", "hits", "misses")
        }
        lookups = totals["hits"] + totals["misses"]
        totals["hit_rate"] = round(totals["hits"] / lookups, 4) if lookups else 0.0
        return {"tiers": tiers, "totals": totals}

    def purge(self, tier: str) -> int:
        removed = 0
        batch: list[bytes] = []
        for key in self._r.scan_iter(match=self._k.cache_pattern(tier), count=1000):
            batch.append(key)
            if len(batch) >= 500:
                removed += int(self._r.unlink(*batch))
                batch.clear()
        if batch:
            removed += int(self._r.unlink(*batch))
        self._r.delete(self._k.cache_stats(tier))
        return removed
