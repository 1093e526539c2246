"""What the API process holds for its lifetime, built once in the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from celery import Celery

from shared.auth import ApiKeyStore, Guard
from shared.cache import ResultCache
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.answerer import Answerer
from shared.search.retriever import Retriever
from shared.tasks.app import CeleryDispatcher


class CacheLookup:
    """A result-tier lookup on the event loop: one round trip to Redis (version, entry and the
    hit/miss counter in one script). `enabled` is RAG_CACHE_ENABLED."""

    def __init__(self, script: Any, *, enabled: bool, prior: Any = None) -> None:
        self._script = script
        self.enabled = enabled
        self._prior = prior  # ((keys, args), version) of a miss the fast path already counted

    def with_prior(self, prior: Any) -> CacheLookup:
        """This lookup for one request, reusing a miss found earlier in the same request."""
        return self if prior is None else CacheLookup(self._script, enabled=self.enabled, prior=prior)

    async def __call__(
        self, cache: ResultCache, corpus: str, parts: tuple[Any, ...]
    ) -> tuple[int, bytes | None]:
        keys, args = cache.lookup_args(corpus, *parts)
        if self._prior is not None and self._prior[0] == (keys, args):
            return int(self._prior[1]), None
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
    guard: Guard
    key_store: ApiKeyStore
