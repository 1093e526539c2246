"""Dependencies: what lifespan built, handed to routes as annotated parameters.

They are `async def` so FastAPI resolves them on the event loop, not in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.api.context import ApiContext
from shared.answer import Answerer
from shared.resources import Resources
from shared.retrieval import Retriever


async def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


ContextDep = Annotated[ApiContext, Depends(get_context)]


async def get_resources(request: Request) -> Resources:
    return request.app.state.ctx.resources  # type: ignore[no-any-return]


async def get_retriever(request: Request) -> Retriever:
    return request.app.state.ctx.retriever  # type: ignore[no-any-return]


async def get_answerer(request: Request) -> Answerer:
    return request.app.state.ctx.answerer  # type: ignore[no-any-return]


ResourcesDep = Annotated[Resources, Depends(get_resources)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
AnswererDep = Annotated[Answerer, Depends(get_answerer)]
