"""What the API process holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from services.api.admission import QueryGate
from shared.cache import ResultCache
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.answerer import Answerer
from shared.search.retriever import Retriever
from shared.tasks.app import CeleryDispatcher


class CacheLookup:
    """A result-tier lookup on the event loop: one round trip to Redis (version, entry and the
    hit/miss counter in one script). `enabled` is RAG_CACHE_ENABLED."""

    def __init__(self, script: Any, *, enabled: bool) -> None:
        self._script = script
        self.enabled = enabled

    async def __call__(
        self, cache: ResultCache, corpus: str, parts: tuple[Any, ...]
    ) -> tuple[int, bytes | None]:
        keys, args = cache.lookup_args(corpus, *parts)
        version, value = await self._script(keys=keys, args=args)
        return int(version), value


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
    query_gate: QueryGate
    aredis: Any  # redis.asyncio.Redis: /health and cache lookups on the event loop
