"""Dependencies: what the lifespan built, handed to routes as narrow annotated parameters.

Only this module reads `app.state`. They are `async def` so FastAPI resolves them on the
event loop, not in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.api.admission import QueryGate
from services.api.context import ApiContext, CacheLookup
from shared.auth import ApiKeyStore, Guard
from shared.cache import CacheStats
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.answerer import Answerer
from shared.search.retriever import Retriever
from shared.settings import Settings
from shared.state.catalog import Catalog
from shared.state.jobs import JobStore
from shared.tasks.app import CeleryDispatcher


def _ctx(request: Request) -> ApiContext:
    return request.app.state.ctx  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return _ctx(request).resources.settings


async def get_resources(request: Request) -> Resources:
    return _ctx(request).resources


async def get_jobs(request: Request) -> JobStore:
    return _ctx(request).resources.jobs


async def get_catalog(request: Request) -> Catalog:
    return _ctx(request).resources.catalog


async def get_staging(request: Request) -> Staging:
    return _ctx(request).staging


async def get_cache_stats(request: Request) -> CacheStats:
    res = _ctx(request).resources
    return CacheStats(res.cache_redis, res.keys)


async def get_dispatcher(request: Request) -> CeleryDispatcher:
    return _ctx(request).dispatch


async def get_retriever(request: Request) -> Retriever:
    return _ctx(request).retriever


async def get_answerer(request: Request) -> Answerer:
    return _ctx(request).answerer


async def get_cache_lookup(request: Request) -> CacheLookup:
    # A miss the ASGI fast path (services/api/fastpath.py) already looked up and counted.
    return _ctx(request).cache_lookup.with_prior(request.scope.get("state", {}).get("rag.lookup"))


async def get_guard(request: Request) -> Guard:
    return _ctx(request).guard


async def get_key_store(request: Request) -> ApiKeyStore:
    return _ctx(request).key_store


async def get_query_gate(request: Request) -> QueryGate:
    return _ctx(request).query_gate


async def get_context(request: Request) -> ApiContext:
    return _ctx(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ResourcesDep = Annotated[Resources, Depends(get_resources)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
StagingDep = Annotated[Staging, Depends(get_staging)]
CacheStatsDep = Annotated[CacheStats, Depends(get_cache_stats)]
DispatcherDep = Annotated[CeleryDispatcher, Depends(get_dispatcher)]
RetrieverDep = Annotated[Retriever, Depends(get_retriever)]
AnswererDep = Annotated[Answerer, Depends(get_answerer)]
CacheLookupDep = Annotated[CacheLookup, Depends(get_cache_lookup)]
GuardDep = Annotated[Guard, Depends(get_guard)]
KeyStoreDep = Annotated[ApiKeyStore, Depends(get_key_store)]
QueryGateDep = Annotated[QueryGate, Depends(get_query_gate)]
ContextDep = Annotated[ApiContext, Depends(get_context)]
