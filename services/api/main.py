"""The API application: `create_app(settings)`; `rag serve` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from services.api.admission import QueryGate
from services.api.auth import build_guard, install_http_policy
from services.api.context import ApiContext, CacheLookup
from services.api.errors import install_error_handlers
from services.api.fastpath import CacheHitFastPath
from services.api.limits import BodyLimit
from services.api.observability import RequestTelemetry, flush_metrics_forever
from services.api.routes import (
    admin,
    cache,
    chat,
    corpora,
    docs_offline,
    documents,
    health,
    ingest,
    keys,
    metrics,
    search,
)
from shared.auth import check_auth_setup, follow_key_changes
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.answerer import Answerer
from shared.search.retriever import Retriever
from shared.settings import Settings, warn_unknown_settings
from shared.tasks.app import CeleryDispatcher, make_celery
from shared.telemetry import metrics as telemetry
from shared.vectors.embedding import threads_for

log = logging.getLogger(__name__)


async def _watch_stalls(res: Resources) -> None:
    """Every API replica looks; failing a stalled job is idempotent."""
    from starlette.concurrency import run_in_threadpool

    from shared.ingest.uploads import sweep_uploads
    from shared.tasks.stalls import fail_stalled_jobs

    stall_s = res.settings.jobs.stall_s
    while True:
        await asyncio.sleep(min(30.0, max(1.0, stall_s / 4)))
        try:
            await run_in_threadpool(fail_stalled_jobs, res, stall_s=stall_s)
            await run_in_threadpool(sweep_uploads, res)
        except Exception as exc:  # noqa: BLE001 - Redis may be down for a moment; look again later
            log.warning("stall check failed: %s: %s", type(exc).__name__, exc)


class RagApp(FastAPI):
    """FastAPI with the cache-hit fast path at its front door, ahead of every middleware
    (services/api/fastpath.py says what it does in their place)."""

    fast_path: CacheHitFastPath | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.fast_path is not None and scope["type"] == "http":
            ctx = getattr(self.state, "ctx", None)
            onward = await self.fast_path(scope, receive, send, ctx)
            if onward is None:
                return
            receive = onward
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for an API bound to `settings.host` (auth `auto` decides from it). Raises
    AuthSetupError when auth is on and RAG_ADMIN_KEY is not set."""
    settings = settings or Settings()
    warn_unknown_settings()
    auth = check_auth_setup(settings.security, settings.host)
    log.info("%s", auth.describe())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        res = Resources(settings, torch_threads=threads_for(1, settings.embedding.threads))
        res.embedder.encode(["warm up"])  # the query embedder, loaded before the first request
        res.sentence_embedder.encode(["warm up"])  # and what ranks extractive answers' sentences
        celery = make_celery(settings)
        consumer = None
        if settings.embedded_store:
            from services.api.index_consumer import IndexConsumer

            res.store  # noqa: B018 - open the embedded store now: this process owns it
            if settings.consume_index:
                consumer = IndexConsumer(res)
                consumer.start()
        retriever = Retriever(res)
        aredis = aioredis.Redis.from_url(settings.redis_url)
        guard, key_store = build_guard(res, aredis, enabled=auth.enabled)
        cache_lookup = CacheLookup.connect(settings)
        telemetry.configure(res.redis, res.keys)
        app.state.ctx = ApiContext(
            resources=res,
            celery=celery,
            dispatch=CeleryDispatcher(celery),
            retriever=retriever,
            answerer=Answerer(res, retriever),
            cache_lookup=cache_lookup,
            staging=Staging(res.redis, res.keys),
            owns_store=settings.embedded_store,
            guard=guard,
            key_store=key_store,
            query_gate=QueryGate.from_settings(settings),
            aredis=aredis,
        )
        watchdog = asyncio.create_task(_watch_stalls(res))
        key_watch = asyncio.create_task(follow_key_changes(guard.ring, key_store, aredis, res.keys))
        flusher = asyncio.create_task(flush_metrics_forever())
        try:
            yield
        finally:
            watchdog.cancel()
            key_watch.cancel()
            flusher.cancel()
            if guard.limiter is not None:
                await guard.limiter.aclose()
            await aredis.aclose()
            await cache_lookup.aclose()
            if consumer is not None:
                consumer.stop()
            res.close()

    app = RagApp(
        title="rag-papers",
        version="0.1.0",
        description="Retrieval-augmented answers over research papers, with citations.",
        lifespan=lifespan,
        docs_url=None,  # served offline by routes/docs_offline.py
        redoc_url=None,
    )
    install_error_handlers(app)
    app.fast_path = CacheHitFastPath(settings)
    limits = settings.limits
    app.add_middleware(BodyLimit, max_body_mb=limits.max_body_mb, max_upload_mb=limits.max_upload_mb)
    install_http_policy(app, settings.security)
    # Outermost middleware: times everything FastAPI serves (the fast path records its own).
    app.add_middleware(RequestTelemetry)
    for module in (
        ingest, search, chat, corpora, health, cache, keys, documents, docs_offline, metrics, admin
    ):
        app.include_router(module.router)
    app.include_router(docs_offline.root_router)
    return app
