"""Search a corpus: BM25, dense or hybrid, through the retrieval cache."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from shared.cache import ResultCache
from shared.errors import InvalidRequestError
from shared.resources import Resources
from shared.search.chunk_documents import ChunkDocuments
from shared.search.ranking import MODES, Fusion, rank, result_row
from shared.settings import RetrievalSettings
from shared.vectors.store import SparseVector, StoredHit, VectorStore

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(slots=True)
class CacheInfo:
    answer_hit: bool = False
    retrieval_hit: bool = False
    embed_hits: int = 0
    embed_misses: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "answer_hit": self.answer_hit,
            "retrieval_hit": self.retrieval_hit,
            "embed_hits": self.embed_hits,
            "embed_misses": self.embed_misses,
        }


@dataclass(slots=True)
class SearchOutcome:
    results: list[dict[str, Any]]
    cache_info: CacheInfo = field(default_factory=CacheInfo)
    version: int = 0
    query_vector: np.ndarray | None = None  # when this search embedded the query


def normalise_query(query: str) -> str:
    return re.sub(r"\s+", " ", query).strip().lower()


class Retriever:
    def __init__(self, res: Resources) -> None:
        self._res = res
        s = res.settings
        self._cache = ResultCache(
            res.cache_redis, res.keys, tier="retrieval", ttl_s=s.cache.retrieval_ttl_s,
            versions=res.redis,
        )
        self._documents = ChunkDocuments()

    def fusion(self) -> Fusion:
        return fusion_of(self._res.settings.retrieval)

    def fusion_settings(self) -> dict[str, Any]:
        r = self._res.settings.retrieval
        return {
            "fusion": r.fusion,
            "rrf_k": r.rrf_k,
            "w": r.dense_weight,
            "c": r.candidates,
            "short": [r.short_query_terms, r.short_query_dense_weight],
        }

    def query_vector(self, query: str, info: CacheInfo, *, use_cache: bool) -> np.ndarray:
        outcome = self._res.embedding_cache.embed(
            [query], self._res.embedder.encode, use_cache=use_cache
        )
        info.embed_hits += outcome.cached
        info.embed_misses += outcome.computed
        return outcome.vectors[0]

    def search(
        self,
        *,
        corpus: str,
        query: str,
        mode: str = "hybrid",
        top_k: int = 10,
        use_cache: bool = True,
        info: CacheInfo | None = None,
        seen_version: int | None = None,
    ) -> SearchOutcome:
        """Ranked results; `seen_version` says the caller already looked the cache up and
        missed at that corpus version, so the lookup (and its miss count) is not repeated."""
        if mode not in MODES:
            raise InvalidRequestError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
        if not query.strip():
            raise InvalidRequestError("query: must not be empty")
        info = info or CacheInfo()
        parts = self.cache_parts(mode=mode, query=query, top_k=top_k)
        if use_cache and seen_version is not None:
            version = seen_version
        elif use_cache:
            # The version is read with the lookup, before searching: a result is never
            # cached under a newer version than the data it was computed from.
            version, cached = self._cache.lookup(corpus, *parts)
            if cached is not None:
                info.retrieval_hit = True
                return SearchOutcome(results=json.loads(cached), cache_info=info, version=version)
        else:
            version = self._res.catalog.version(corpus)
        vectors: list[np.ndarray] = []
        if not use_cache:
            results = self._search_uncached(
                corpus, query, mode, top_k, info, use_cache=False, vectors=vectors
            )
            return SearchOutcome(
                results=results, cache_info=info, version=version,
                query_vector=vectors[0] if vectors else None,
            )
        results, computed = self._cache.get_or_compute(
            self._cache.key(corpus, version, *parts),
            lambda: self._search_uncached(
                corpus, query, mode, top_k, info, use_cache=True, vectors=vectors
            ),
            timeout_s=self._res.settings.cache.flight_timeout_s,
        )
        info.retrieval_hit = not computed
        return SearchOutcome(
            results=results, cache_info=info, version=version,
            query_vector=vectors[0] if vectors else None,
        )

    def cache_parts(self, *, mode: str, query: str, top_k: int) -> tuple[Any, ...]:
        return (mode, normalise_query(query), top_k, self.fusion_settings())

    @property
    def cache(self) -> ResultCache:
        return self._cache

    def _search_uncached(
        self,
        corpus: str,
        query: str,
        mode: str,
        top_k: int,
        info: CacheInfo,
        *,
        use_cache: bool,
        vectors: list[np.ndarray],
    ) -> list[dict[str, Any]]:
        def vector() -> np.ndarray:
            v = self.query_vector(query, info, use_cache=use_cache)
            vectors.append(v)
            return v

        ranked = ranked_hits(
            self._res.store, corpus, mode=mode, fusion=self.fusion(), top_k=top_k,
            query_vector=vector, sparse_query=self._res.bm25.encode_query(query),
            documents=self._documents,
        )
        return [result_row(hit, score) for hit, score in ranked]


def fusion_of(r: RetrievalSettings) -> Fusion:
    """The ranking policy of the RAG_RETRIEVAL_* settings."""
    return Fusion(
        kind=r.fusion,
        rrf_k=r.rrf_k,
        dense_weight=r.dense_weight,
        candidates=r.candidates,
        short_query_terms=r.short_query_terms,
        short_query_dense_weight=r.short_query_dense_weight,
    )


def ranked_hits(
    store: VectorStore,
    corpus: str,
    *,
    mode: str,
    fusion: Fusion,
    top_k: int,
    query_vector: Callable[[], np.ndarray],
    sparse_query: SparseVector,
    documents: ChunkDocuments,
) -> list[tuple[StoredHit, float]]:
    """The top `top_k` (chunk, score) of one query: each list fetched `fusion.depth` deep from
    the store, then ranked. `query_vector` is called only when a dense list is needed. Lists
    deeper than the page come without payload, their chunks' documents from `documents`
    (what ranking reads); the page's payloads follow.

    `/search` and the offline benchmarks (bench/tune_scifact.py, bench/baselines.py) both rank
    through here, so the benchmarks score what the service returns.
    """
    depth = fusion.depth(mode, top_k)
    fields = () if depth > top_k else None
    dense: list[StoredHit] = []
    sparse: list[StoredHit] = []
    if mode in ("dense", "hybrid"):
        dense = store.search_dense(corpus, query_vector().tolist(), limit=depth, fields=fields)
    if mode in ("bm25", "hybrid") and sparse_query.indices:
        sparse = store.search_sparse(corpus, sparse_query, limit=depth, fields=fields)
    if fields is not None:
        dense, sparse = documents.label(store, corpus, dense, sparse)
    ranked = rank(
        mode, dense, sparse, fusion=fusion, top_k=top_k, query_terms=len(sparse_query.indices)
    )
    if fields is None or not ranked:
        return ranked
    payloads = store.payloads(corpus, [hit.id for hit, _ in ranked])
    return [
        (StoredHit(id=hit.id, score=hit.score, payload=payloads[hit.id]), score)
        for hit, score in ranked
        if hit.id in payloads  # deleted between the two reads: dropped, as a later search would
    ]
