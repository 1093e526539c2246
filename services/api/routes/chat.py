"""POST /chat, GET /chat/{id}, DELETE /chat/{id}, GET /chat/{id}/export: conversations.

A session belongs to the key that created it; for any other key it does not exist (404).
A turn may name another corpus than the session's first (the turn and its messages record
it); the key must be allowed that corpus.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from services.api.admission import answer_in_turn
from services.api.auth import DENIED, ReaderDep
from services.api.deps import AnswererDep, CacheLookupDep, QueryGateDep, ResourcesDep
from services.api.errors import ERRORS, NOT_FOUND
from services.api.schemas import ChatRequest, ChatResponse, ChatSessionView
from services.api.streaming import STREAMED
from shared.auth import Principal
from shared.errors import InvalidRequestError
from shared.identity import check_corpus_name
from shared.search.answerer import Answerer
from shared.search.conversation import Conversation
from shared.state.sessions import ChatSession, ChatSessions

router = APIRouter(prefix="/chat", tags=["chat"], responses={**ERRORS, **DENIED})


async def get_sessions(res: ResourcesDep) -> ChatSessions:
    chat = res.settings.chat
    return ChatSessions(res.redis, res.keys, ttl_s=chat.ttl_s, max_messages=chat.max_messages)


SessionsDep = Annotated[ChatSessions, Depends(get_sessions)]
SessionIdParam = Annotated[
    str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The session's id.")
]


def _open_session(
    body: ChatRequest, principal: Principal, sessions: ChatSessions, answerer: Answerer
) -> tuple[ChatSession, str]:
    """The session of this turn (a new one when none is named) and the turn's corpus."""
    existing = sessions.get(body.session_id, owner=principal.key_id) if body.session_id else None
    corpus = body.corpus or (existing.corpus if existing else "default")
    check_corpus_name(corpus)
    principal.require_corpus(corpus)
    if existing is not None:
        return existing, corpus
    session = sessions.create(
        corpus=corpus, owner=principal.key_id, generator=answerer.generator_name, model=answerer.model
    )
    return session, corpus


@router.post("", response_model=ChatResponse, responses={**STREAMED, **NOT_FOUND})
async def chat(
    body: ChatRequest,
    principal: ReaderDep,
    answerer: AnswererDep,
    sessions: SessionsDep,
    lookup: CacheLookupDep,
    gate: QueryGateDep,
) -> Any:
    """One turn: the /ask answer to `message`, plus `session_id` and `rewritten_query`. A turn
    holds one of RAG_MAX_CONCURRENT_QUERIES slots while it runs (503 when none frees up)."""
    if not body.message.strip():
        raise InvalidRequestError("message: must not be empty")
    session, corpus = await run_in_threadpool(_open_session, body, principal, sessions, answerer)
    conversation = Conversation(answerer, sessions)
    use_cache = body.use_cache and lookup.enabled
    return await answer_in_turn(
        gate,
        lambda emit, cancel: conversation.turn(
            session,
            message=body.message,
            corpus=corpus,
            top_k=body.top_k,
            use_cache=use_cache,
            emit=emit,
            cancel=cancel,
        ),
        stream=body.stream,
    )


def _view(sessions: ChatSessions, session_id: str, owner: str) -> dict[str, Any]:
    session = sessions.get(session_id, owner=owner)
    return {**session.header(), "messages": sessions.messages(session.session_id)}


@router.get(
    "/{session_id}",
    response_model=ChatSessionView,
    response_model_exclude_unset=True,  # a user message has no citations, not null ones
    responses=NOT_FOUND,
)
async def get_session(session_id: SessionIdParam, principal: ReaderDep, sessions: SessionsDep) -> Any:
    """The session and its messages, oldest first (the last RAG_CHAT_MAX_MESSAGES)."""
    return await run_in_threadpool(_view, sessions, session_id, principal.key_id)


@router.delete("/{session_id}", status_code=204, responses=NOT_FOUND)
async def delete_session(session_id: SessionIdParam, principal: ReaderDep, sessions: SessionsDep) -> Response:
    await run_in_threadpool(lambda: sessions.delete(session_id, owner=principal.key_id))
    return Response(status_code=204)


@router.get(
    "/{session_id}/export",
    response_class=Response,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "A header line (session_id, corpus, generator, model, created), "
            "then one line per message with its citations and cache_info.",
        },
        **NOT_FOUND,
    },
)
async def export_session(session_id: SessionIdParam, principal: ReaderDep, sessions: SessionsDep) -> Response:
    view = await run_in_threadpool(_view, sessions, session_id, principal.key_id)
    messages = view.pop("messages")
    lines = [json.dumps(view)] + [json.dumps(m) for m in messages]
    return Response(
        content="\n".join(lines) + "\n",
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="chat-{session_id}.ndjson"'},
    )
