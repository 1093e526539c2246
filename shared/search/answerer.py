"""Answers to a question over one corpus, with numbered citations.

    retrieve   one query; for a chat follow-up its rewrite and the raw message, fused
    number     the results are the sources [1]..[n], in retrieval order (`retrieval` event)
    abstain    when no retrieved chunk is similar enough to the question: no generator runs
    generate   RAG_GENERATOR: an LLM streamed under the fallback policy, or the extractive
               answer (the best prose sentences of the top chunks, each with its number)
    check      citation numbers repaired and counted, each cited sentence checked lexically
    cache      in the answers tier under the generator's identity; never a fallback answer

Every [n] in an answer is the source's place in the retrieval results, whichever generator
wrote it, and `citations` lists the cited sources in order of first citation. As the answer
forms, events go to an `emit(name, data)` callback: `retrieval` ({"sources": [...]}),
`token` ({"text": ...}) and `citation` (the source, when its number is first cited). The
API streams them; a plain call emits to nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.cache import ResultCache
from shared.errors import InvalidRequestError
from shared.generation import (
    ABSTAIN_ANSWER,
    Citation,
    Completed,
    Fallback,
    GroundedAnswer,
    TextDelta,
    Timeouts,
    Turn,
    build_generator,
    generator_identity,
    ground_answer,
    should_abstain,
    sources_from_hits,
    stream_answer,
)
from shared.generation import Generator as LLMGenerator
from shared.resources import Resources
from shared.search.extractive import EXTRACTIVE, extractive_answer
from shared.search.followup import fuse_results
from shared.search.retriever import CacheInfo, Retriever, normalise_query

log = logging.getLogger(__name__)

ANSWERER = "answers-v3"  # changes whenever a cached answer would read differently
# Identical cold questions wait for the first one's answer; an LLM answer may take its whole
# time limit, so waiters wait that long (and a little more) before answering themselves.
_FLIGHT_MARGIN_S = 15.0

Emit = Callable[[str, dict[str, Any]], None]


def _emit_nothing(_name: str, _data: dict[str, Any]) -> None:
    pass


class AnswerCancelled(Exception):
    """The client went away mid-answer: nothing is cached."""


def citation_row(n: int, hit: dict[str, Any]) -> dict[str, Any]:
    """Source [n] as the API shows it: paper, page, the passage and its retrieval score."""
    return {
        "n": n,
        "source": hit.get("source"),
        "title": hit.get("title"),
        "page": hit.get("page"),
        "chunk_id": hit["chunk_id"],
        "doc_id": hit.get("doc_id"),
        "text": hit.get("text"),
        "score": hit["score"],
    }


@dataclass(frozen=True, slots=True)
class _Retrieved:
    queries: tuple[str, ...]
    hits: list[dict[str, Any]]
    query_vectors: list[np.ndarray]


class Answerer:
    def __init__(self, res: Resources, retriever: Retriever) -> None:
        self._res = res
        self._retriever = retriever
        gen = res.settings.generation
        self._settings = gen
        self._generator: LLMGenerator | None = build_generator(gen)
        self._timeouts = Timeouts.from_settings(gen)
        self._cache = ResultCache(
            res.cache_redis, res.keys, tier="answers", ttl_s=res.settings.cache.answer_ttl_s,
            versions=res.redis,
        )
        self._flight_timeout_s = res.settings.cache.flight_timeout_s
        if self._generator is not None:
            self._flight_timeout_s = max(
                self._flight_timeout_s, gen.llm_total_timeout_s + _FLIGHT_MARGIN_S
            )

    @property
    def cache(self) -> ResultCache:
        return self._cache

    @property
    def generator_name(self) -> str:
        return self._generator.name if self._generator is not None else "extractive"

    @property
    def model(self) -> str | None:
        return self._generator.model if self._generator is not None else None

    def identity(self) -> dict[str, Any]:
        """What makes two answers to the same question and sources differ."""
        if self._generator is None:
            ident: dict[str, Any] = {
                "generator": "extractive",
                "version": EXTRACTIVE,
                "sentences": self._res.sentence_embedder.model_id,  # what ranks them
            }
        else:
            ident = generator_identity(generator=self._generator, settings=self._settings)
        return {**ident, "abstain": self._settings.abstain_min_score}

    def cache_parts(self, *, question: str, top_k: int) -> tuple[Any, ...]:
        """The answer-tier key of POST /ask (also computed by the API's fast path)."""
        return (
            normalise_query(question),
            top_k,
            ANSWERER,
            self._retriever.fusion_settings(),
            self.identity(),
        )

    def chat_cache_parts(
        self, *, message: str, rewrite: str | None, history: Sequence[Turn], top_k: int
    ) -> tuple[Any, ...]:
        # The extractive answer reads no history; an LLM's does.
        turns = [(t.role, t.content) for t in history] if self._generator is not None else []
        return (
            "chat",
            normalise_query(message),
            normalise_query(rewrite) if rewrite else None,
            turns,
            top_k,
            ANSWERER,
            self._retriever.fusion_settings(),
            self.identity(),
        )

    def ask(
        self,
        *,
        corpus: str,
        question: str,
        top_k: int = 5,
        use_cache: bool = True,
        seen_version: int | None = None,
        emit: Emit | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """The answer; `seen_version` says the caller already looked the cache up and missed."""
        if not question.strip():
            raise InvalidRequestError("question: must not be empty")
        return self._cached(
            corpus=corpus,
            parts=self.cache_parts(question=question, top_k=top_k),
            use_cache=use_cache,
            seen_version=seen_version,
            compute=lambda info: self._compute(
                corpus=corpus,
                question=question,
                queries=(question,),
                history=(),
                top_k=top_k,
                info=info,
                use_cache=use_cache,
                emit=emit or _emit_nothing,
                cancel=cancel,
            ),
        )

    def answer_followup(
        self,
        *,
        corpus: str,
        message: str,
        rewrite: str | None,
        history: Sequence[Turn] = (),
        top_k: int = 5,
        use_cache: bool = True,
        emit: Emit | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """A chat message's answer: retrieved with `rewrite` (when there is one) and the raw
        message, fused; the message itself is what gets answered, `history` what an LLM sees
        of the conversation before it."""
        if not message.strip():
            raise InvalidRequestError("message: must not be empty")
        queries = (rewrite, message) if rewrite else (message,)
        return self._cached(
            corpus=corpus,
            parts=self.chat_cache_parts(
                message=message, rewrite=rewrite, history=history, top_k=top_k
            ),
            use_cache=use_cache,
            seen_version=None,
            compute=lambda info: self._compute(
                corpus=corpus,
                question=message,
                queries=queries,
                history=tuple(history) if self._generator is not None else (),
                top_k=top_k,
                info=info,
                use_cache=use_cache,
                emit=emit or _emit_nothing,
                cancel=cancel,
            ),
        )

    # ---- the cache -----------------------------------------------------------------------

    def _cached(
        self,
        *,
        corpus: str,
        parts: tuple[Any, ...],
        use_cache: bool,
        seen_version: int | None,
        compute: Callable[[CacheInfo], dict[str, Any]],
    ) -> dict[str, Any]:
        info = CacheInfo()
        if not use_cache:
            return {**compute(info), "cache_info": info.as_dict()}
        if seen_version is None:
            version, cached = self._cache.lookup(corpus, *parts)
            if cached is not None:
                info.answer_hit = True
                return {**json.loads(cached), "cache_info": info.as_dict()}
        else:
            version = seen_version
        answer, computed = self._cache.get_or_compute(
            self._cache.key(corpus, version, *parts),
            lambda: compute(info),
            timeout_s=self._flight_timeout_s,
            store_if=lambda a: not a["fallback"],  # the LLM may be back for the next asker
        )
        info.answer_hit = not computed
        return {**answer, "cache_info": info.as_dict()}

    # ---- one answer ----------------------------------------------------------------------

    def _compute(
        self,
        *,
        corpus: str,
        question: str,
        queries: Sequence[str],
        history: Sequence[Turn],
        top_k: int,
        info: CacheInfo,
        use_cache: bool,
        emit: Emit,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        found = self._retrieve(corpus, queries, top_k, info, use_cache=use_cache)
        hits = found.hits
        rows = [citation_row(n, hit) for n, hit in enumerate(hits, start=1)]
        emit("retrieval", {"sources": rows})
        if self._abstains(corpus, found):
            return self._abstained(emit)
        if self._generator is None:
            text = self._extractive(queries, found, info, use_cache=use_cache)
            if text is None:
                return self._abstained(emit)
            grounded = ground_answer(text=text, sources=sources_from_hits(hits))
            _emit_whole(emit, grounded, rows)
            return self._response(grounded, rows)
        if cancel is not None and cancel.is_set():
            raise AnswerCancelled
        events = stream_answer(
            generator=self._generator,
            question=question,
            sources=sources_from_hits(hits),
            timeouts=self._timeouts,
            history=history,
        )
        failure: Fallback | None = None
        try:
            for event in events:
                if cancel is not None and cancel.is_set():
                    raise AnswerCancelled
                if isinstance(event, TextDelta):
                    emit("token", {"text": event.text})
                elif isinstance(event, Citation):
                    emit("citation", rows[event.n - 1])
                elif isinstance(event, Completed):
                    return self._response(event.answer, rows)
                elif isinstance(event, Fallback):
                    failure = event
        finally:
            if isinstance(events, Generator):
                events.close()  # an early stop cancels the LLM request
        assert failure is not None
        log.warning(
            "%s generator failed (%s: %s); serving the extractive answer",
            self.generator_name, failure.reason, failure.detail,
        )
        if failure.partial:  # the client replaces what it was shown with `final`
            emit = _emit_nothing
        text = self._extractive(queries, found, info, use_cache=use_cache)
        if text is None:
            return {**self._abstained(emit), "fallback": True, "fallback_reason": failure.reason}
        grounded = ground_answer(text=text, sources=sources_from_hits(hits))
        _emit_whole(emit, grounded, rows)
        return {
            **self._response(grounded, rows),
            "fallback": True,
            "fallback_reason": failure.reason,
        }

    def _response(self, grounded: GroundedAnswer, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "answer": grounded.text,
            "citations": [rows[n - 1] for n in grounded.cited],
            "generator": self.generator_name,
            "model": self.model,
            "abstained": False,
            "fallback": False,
            "fallback_reason": None,
            "invalid_citations": grounded.invalid_citations,
            "unsupported_sentences": grounded.unsupported_sentences,
        }

    def _abstained(self, emit: Emit) -> dict[str, Any]:
        emit("token", {"text": ABSTAIN_ANSWER})
        return {
            "answer": ABSTAIN_ANSWER,
            "citations": [],
            "generator": self.generator_name,
            "model": self.model,
            "abstained": True,
            "fallback": False,
            "fallback_reason": None,
            "invalid_citations": 0,
            "unsupported_sentences": 0,
        }

    # ---- retrieval and relevance -----------------------------------------------------------

    def _retrieve(
        self,
        corpus: str,
        queries: Sequence[str],
        top_k: int,
        info: CacheInfo,
        *,
        use_cache: bool,
    ) -> _Retrieved:
        rankings: list[list[dict[str, Any]]] = []
        vectors: list[np.ndarray] = []
        all_hit = True
        for query in queries:
            outcome = self._retriever.search(
                corpus=corpus, query=query, mode="hybrid", top_k=top_k,
                use_cache=use_cache, info=info,
            )
            all_hit = all_hit and info.retrieval_hit
            rankings.append(outcome.results)
            q = outcome.query_vector
            if q is None:  # the retrieval came from the cache: the query vector likely too
                q = self._retriever.query_vector(query, info, use_cache=use_cache)
            vectors.append(q)
        info.retrieval_hit = all_hit
        hits = rankings[0] if len(rankings) == 1 else fuse_results(rankings, top_k=top_k)
        return _Retrieved(queries=tuple(queries), hits=hits, query_vectors=vectors)

    def _embed_sentences(self, texts: list[str], info: CacheInfo, *, use_cache: bool) -> np.ndarray:
        """Candidate sentences' vectors, by Resources.sentence_embedder (int8 by default)."""
        embedded = self._res.sentence_embedding_cache.embed(
            texts, self._res.sentence_embedder.encode, use_cache=use_cache
        )
        info.embed_hits += embedded.cached
        info.embed_misses += embedded.computed
        return embedded.vectors

    def _similarity(self, vectors: np.ndarray, found: _Retrieved) -> np.ndarray:
        """Cosine of each row to the closest of the queries (vectors are normalised)."""
        return np.asarray(np.max(np.stack([vectors @ q for q in found.query_vectors]), axis=0))

    def _extractive(
        self, queries: Sequence[str], found: _Retrieved, info: CacheInfo, *, use_cache: bool
    ) -> str | None:
        return extractive_answer(
            hits=found.hits,
            queries=queries,
            tokenize=self._res.bm25.tokenize,
            similarity=lambda sentences: self._similarity(
                self._embed_sentences(sentences, info, use_cache=use_cache), found
            ),
        )

    def _abstains(self, corpus: str, found: _Retrieved) -> bool:
        """True when no chunk of the corpus is similar enough to the question: the calibrated
        signal is the best question-chunk cosine over the corpus, the dense index's top 1,
        asked with the query vectors retrieval already has (one store query each, nothing
        embedded)."""
        if not found.hits:
            return True
        best = [
            hit.score
            for vector in found.query_vectors
            for hit in self._res.store.search_dense(corpus, vector.tolist(), limit=1, fields=())
        ]
        return should_abstain(similarities=best, min_score=self._settings.abstain_min_score)


def _emit_whole(emit: Emit, grounded: GroundedAnswer, rows: list[dict[str, Any]]) -> None:
    """An answer that exists all at once (extractive): one token, then its citations."""
    emit("token", {"text": grounded.text})
    for n in grounded.cited:
        emit("citation", rows[n - 1])
