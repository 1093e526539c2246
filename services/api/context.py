"""What the API process holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from celery import Celery

from services.api.admission import QueryGate
from shared.auth import ApiKeyStore, Guard
from shared.cache import ResultCache
from shared.cache.tiers import ENTRY_SCRIPT, LOOKUP_SCRIPT
from shared.direct_script import DirectScript
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.answerer import Answerer
from shared.search.retriever import Retriever
from shared.settings import Settings
from shared.tasks.app import CeleryDispatcher


class CacheLookup:
    """A result-tier lookup on the event loop. One round trip when the cache and the broker
    are one Redis (version, entry and the hit/miss counter in one script); else the version
    from the broker, then entry and counter from the cache. `enabled` is RAG_CACHE_ENABLED."""

    def __init__(
        self,
        cache: aioredis.Redis,
        *,
        broker: aioredis.Redis | None,
        enabled: bool,
        scripts: tuple[DirectScript, DirectScript] | None = None,
        prior: Any = None,
    ) -> None:
        self._cache = cache
        self._broker = broker
        self._lookup, self._entry = scripts or (
            DirectScript(cache, LOOKUP_SCRIPT),
            DirectScript(cache, ENTRY_SCRIPT),
        )
        self.enabled = enabled
        self._prior = prior  # ((corpus, parts), version) of a miss the fast path counted

    def with_prior(self, prior: Any) -> CacheLookup:
        """This lookup for one request, reusing a miss found earlier in the same request."""
        if prior is None:
            return self
        return CacheLookup(
            self._cache, broker=self._broker, enabled=self.enabled,
            scripts=(self._lookup, self._entry), prior=prior,
        )

    @classmethod
    def connect(cls, settings: Settings) -> CacheLookup:
        cache = aioredis.Redis.from_url(settings.cache_redis_url)
        apart = settings.cache_redis_url != settings.redis_url
        broker = aioredis.Redis.from_url(settings.redis_url) if apart else None
        return cls(cache, broker=broker, enabled=settings.cache.enabled)

    async def aclose(self) -> None:
        for script in (self._lookup, self._entry):
            await script.aclose()
        await self._cache.aclose()
        if self._broker is not None:
            await self._broker.aclose()

    async def __call__(
        self, cache: ResultCache, corpus: str, parts: tuple[Any, ...]
    ) -> tuple[int, bytes | None]:
        if self._prior is not None and self._prior[0] == (corpus, parts):
            return int(self._prior[1]), None
        if self._broker is None:
            keys, args = cache.lookup_args(corpus, *parts)
            version, value = await self._lookup(keys=keys, args=args)
            return int(version), value
        version = int(await self._broker.get(cache.version_key(corpus)) or 0)
        value = await self._entry(keys=cache.entry_keys(corpus, version, *parts))
        return version, value


@dataclass
class ApiContext:
    resources: Resources
    celery: Celery
    dispatch: CeleryDispatcher
    retriever: Retriever
    answerer: Answerer
    cache_lookup: CacheLookup
    staging: Staging
    owns_store: bool
    guard: Guard
    key_store: ApiKeyStore
    query_gate: QueryGate
    aredis: Any  # redis.asyncio.Redis: /health and cache lookups on the event loop
