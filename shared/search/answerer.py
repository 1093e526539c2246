"""The default answerer: extractive, no LLM. The sentences of the top chunks that best match
the question, each followed by the number of the citation it comes from."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from shared.cache import ResultCache
from shared.resources import Resources
from shared.search.retriever import CacheInfo, Retriever, normalise_query

ANSWERER = "extractive-v2"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_MAX_SENTENCES = 3
_MIN_CHARS = 25
# Sentences embedded per answer: the best by a cheap lexical pre-score. Embedding every
# sentence of every top chunk was 75-85% of a cold /ask; the answer's three come from the
# lexically closest few dozen in practice.
_MAX_CANDIDATES = 24


def split_sentences(text: str) -> list[str]:
    sentences = (" ".join(s.split()) for s in _SENTENCE_END.split(text))
    return [s for s in sentences if len(s) >= _MIN_CHARS]


class Answerer:
    def __init__(self, res: Resources, retriever: Retriever) -> None:
        self._res = res
        self._retriever = retriever
        self._cache = ResultCache(
            res.cache_redis, res.keys, tier="answers", ttl_s=res.settings.cache.answer_ttl_s,
            versions=res.redis,
        )

    @property
    def cache(self) -> ResultCache:
        return self._cache

    def cache_parts(self, *, question: str, top_k: int) -> tuple[Any, ...]:
        return (normalise_query(question), top_k, ANSWERER, self._retriever.fusion_settings())

    def ask(
        self,
        *,
        corpus: str,
        question: str,
        top_k: int = 5,
        use_cache: bool = True,
        seen_version: int | None = None,
    ) -> dict[str, Any]:
        """The answer; `seen_version` says the caller already looked the cache up and missed."""
        info = CacheInfo()
        if not use_cache:
            answer = self._answer(corpus, question, top_k, info, use_cache=False)
            return {**answer, "cache_info": info.as_dict()}
        parts = self.cache_parts(question=question, top_k=top_k)
        if seen_version is None:
            version, cached = self._cache.lookup(corpus, *parts)
            if cached is not None:
                info.answer_hit = True
                return {**json.loads(cached), "cache_info": info.as_dict()}
        else:
            version = seen_version
        answer, computed = self._cache.get_or_compute(
            self._cache.key(corpus, version, *parts),
            lambda: self._answer(corpus, question, top_k, info, use_cache=True),
            timeout_s=self._res.settings.cache.flight_timeout_s,
        )
        info.answer_hit = not computed
        return {**answer, "cache_info": info.as_dict()}

    def _answer(
        self, corpus: str, question: str, top_k: int, info: CacheInfo, *, use_cache: bool
    ) -> dict[str, Any]:
        outcome = self._retriever.search(
            corpus=corpus, query=question, mode="hybrid", top_k=top_k,
            use_cache=use_cache, info=info,
        )
        hits = outcome.results
        if not hits:
            return {"answer": "No indexed passage matches this question.", "citations": []}
        candidates: list[tuple[int, str]] = [
            (i, s) for i, hit in enumerate(hits) for s in split_sentences(hit["text"] or "")
        ]
        if not candidates:
            candidates = [(i, (hit["text"] or "")[:400]) for i, hit in enumerate(hits)]
        # The share of the question's terms a sentence contains, nudged towards better-ranked
        # chunks: the pre-score that picks which sentences are worth embedding.
        terms = set(self._res.bm25.tokenize(question))
        overlap = np.array(
            [len(terms & set(self._res.bm25.tokenize(s))) / max(1, len(terms)) for _, s in candidates]
        )
        ranks = np.array([i for i, _ in candidates])
        if len(candidates) > _MAX_CANDIDATES:
            keep = np.sort(np.argsort(-(overlap - 0.02 * ranks), kind="stable")[:_MAX_CANDIDATES])
            candidates = [candidates[int(j)] for j in keep]
            overlap, ranks = overlap[keep], ranks[keep]
        q = outcome.query_vector
        if q is None:  # the retrieval came from the cache: the query vector likely too
            q = self._retriever.query_vector(question, info, use_cache=use_cache)
        embedded = self._res.embedding_cache.embed(
            [s for _, s in candidates], self._res.embedder.encode, use_cache=use_cache
        )
        info.embed_hits += embedded.cached
        info.embed_misses += embedded.computed
        scores = embedded.vectors @ q + 0.15 * overlap - 0.02 * ranks
        chosen: list[tuple[int, str]] = []
        for j in np.argsort(-scores):
            i, sentence = candidates[int(j)]
            if sentence not in (s for _, s in chosen):
                chosen.append((i, sentence))
            if len(chosen) == _MAX_SENTENCES:
                break
        numbering: dict[int, int] = {}
        parts = []
        for i, sentence in chosen:
            n = numbering.setdefault(i, len(numbering) + 1)
            parts.append(f"{sentence} [{n}]")
        citations = []
        for i, n in sorted(numbering.items(), key=lambda kv: kv[1]):
            hit = hits[i]
            citations.append(
                {
                    "n": n,
                    "source": hit["source"],
                    "title": hit["title"],
                    "page": hit["page"],
                    "chunk_id": hit["chunk_id"],
                    "doc_id": hit["doc_id"],
                    "text": hit["text"],
                    "score": hit["score"],
                }
            )
        return {"answer": " ".join(parts), "citations": citations}
