"""Dependencies: what lifespan built, handed to routes as annotated parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.api.context import ApiContext
from shared.answer import Answerer
from shared.resources import Resources
from shared.retrieval import Retriever
from shared.settings import Settings


def get_context(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


ContextDep = Annotated[ApiContext, Depends(get_context)]


def get_resources(request: Request) -> Resources:
    return get_context(request).resources


def get_settings(request: Request) -> Settings:
    return get_context(request).resources.settings


def get_retriever(request: Request) -> Retriever:
    return get_context(request).retriever


def get_answerer(request: Request) -> Answerer:
    return get_context(request).answerer


ResourcesDep = Annotated[Resources, Depends(get_resources)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
AnswererDep = Annotated[Answerer, Depends(get_answerer)]
