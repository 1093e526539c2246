"""POST /search and POST /ask.

A cache hit is served on the event loop in one Redis round trip (version + entry + counter
in one script) and returned as the stored bytes (streamed: one `final` event); everything
else runs in the thread pool, a streamed answer in a thread of its own (`streaming`), at most
RAG_MAX_CONCURRENT_QUERIES at once (services/api/admission.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from services.api.admission import answer_in_turn
from services.api.auth import DENIED, ReaderDep
from services.api.cache_hits import hit_body
from services.api.deps import AnswererDep, CacheLookupDep, QueryGateDep, RetrieverDep
from services.api.errors import ERRORS
from services.api.schemas import AskRequest, AskResponse, SearchRequest, SearchResponse
from services.api.streaming import STREAMED, sse_final
from shared.errors import InvalidRequestError
from shared.identity import check_corpus_name

router = APIRouter(tags=["search"], responses=DENIED)


def _hit_response(raw: bytes, *, tier: str, version: int) -> Response:
    return Response(content=hit_body(raw, tier=tier, version=version), media_type="application/json")


@router.post("/search", response_model=SearchResponse, responses=ERRORS)
async def search(
    body: SearchRequest,
    principal: ReaderDep,
    retriever: RetrieverDep,
    lookup: CacheLookupDep,
    gate: QueryGateDep,
) -> Any:
    check_corpus_name(body.corpus)
    principal.require_corpus(body.corpus)
    body.use_cache = body.use_cache and lookup.enabled
    seen_version = None
    if body.use_cache and body.query.strip():
        parts = retriever.cache_parts(mode=body.mode, query=body.query, top_k=body.top_k)
        seen_version, raw = await lookup(retriever.cache, body.corpus, parts)
        if raw is not None:
            return _hit_response(raw, tier="retrieval", version=seen_version)
    async with gate.slot():
        outcome = await run_in_threadpool(
            retriever.search,
            corpus=body.corpus,
            query=body.query,
            mode=body.mode,
            top_k=body.top_k,
            use_cache=body.use_cache,
            seen_version=seen_version,
        )
    return {
        "results": outcome.results,
        "corpus_version": outcome.version,
        "cache_info": outcome.cache_info.as_dict(),
    }


@router.post("/ask", response_model=AskResponse, responses={**ERRORS, **STREAMED})
async def ask(
    body: AskRequest,
    principal: ReaderDep,
    answerer: AnswererDep,
    lookup: CacheLookupDep,
    gate: QueryGateDep,
) -> Any:
    """An answer with numbered citations; with "stream": true, as server-sent events."""
    check_corpus_name(body.corpus)
    principal.require_corpus(body.corpus)
    if not body.question.strip():
        raise InvalidRequestError("question: must not be empty")
    seen_version = None
    body.use_cache = body.use_cache and lookup.enabled
    if body.use_cache:
        parts = answerer.cache_parts(question=body.question, top_k=body.top_k)
        seen_version, raw = await lookup(answerer.cache, body.corpus, parts)
        if raw is not None:
            hit = hit_body(raw, tier="answers", version=seen_version)
            if body.stream:
                return sse_final(hit)
            return Response(content=hit, media_type="application/json")
    return await answer_in_turn(
        gate,
        lambda emit, cancel: answerer.ask(
            corpus=body.corpus,
            question=body.question,
            top_k=body.top_k,
            use_cache=body.use_cache,
            seen_version=seen_version,
            emit=emit,
            cancel=cancel,
        ),
        stream=body.stream,
    )
