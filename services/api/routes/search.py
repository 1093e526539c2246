"""POST /search and POST /ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from services.api.deps import AnswererDep, RetrieverDep
from services.api.schemas import AskRequest, SearchRequest
from shared.identity import check_corpus_name

router = APIRouter(tags=["search"])


@router.post("/search")
async def search(body: SearchRequest, retriever: RetrieverDep) -> dict[str, Any]:
    check_corpus_name(body.corpus)
    outcome = await run_in_threadpool(
        retriever.search,
        corpus=body.corpus,
        query=body.query,
        mode=body.mode,
        top_k=body.top_k,
        use_cache=body.use_cache,
    )
    return {
        "results": outcome.results,
        "corpus_version": outcome.version,
        "cache_info": outcome.cache_info.as_dict(),
    }


@router.post("/ask")
async def ask(body: AskRequest, answerer: AnswererDep) -> dict[str, Any]:
    check_corpus_name(body.corpus)
    if not body.question.strip():
        from shared.errors import InvalidRequestError

        raise InvalidRequestError("question: must not be empty")
    return await run_in_threadpool(
        answerer.ask,
        corpus=body.corpus,
        question=body.question,
        top_k=body.top_k,
        use_cache=body.use_cache,
    )
