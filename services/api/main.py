"""The API application: `create_app(settings)`; `rag serve` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI

from services.api.admission import QueryGate
from services.api.context import ApiContext, CacheLookup
from services.api.errors import install_error_handlers
from services.api.limits import BodyLimit
from services.api.routes import cache, corpora, health, ingest, search, ui
from shared.search.answerer import Answerer
from shared.cache.tiers import LOOKUP_SCRIPT
from shared.tasks.app import CeleryDispatcher, make_celery
from shared.vectors.embedding import threads_for
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.retriever import Retriever
from shared.settings import Settings, warn_unknown_settings

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    warn_unknown_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        res = Resources(settings, torch_threads=threads_for(1, settings.embedding.threads))
        res.embedder.encode(["warm up"])  # the query embedder, loaded before the first request
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
        app.state.ctx = ApiContext(
            resources=res,
            celery=celery,
            dispatch=CeleryDispatcher(celery),
            retriever=retriever,
            answerer=Answerer(res, retriever),
            cache_lookup=CacheLookup(
                aredis.register_script(LOOKUP_SCRIPT), enabled=settings.cache.enabled
            ),
            staging=Staging(res.redis, res.keys),
            owns_store=settings.embedded_store,
            query_gate=QueryGate.from_settings(settings),
            aredis=aredis,
        )
        watchdog = asyncio.create_task(_watch_stalls(res))
        try:
            yield
        finally:
            watchdog.cancel()
            await aredis.aclose()
            if consumer is not None:
                consumer.stop()
            res.close()

    app = FastAPI(
        title="rag-papers",
        version="0.1.0",
        description="Retrieval-augmented answers over research papers, with citations.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    limits = settings.limits
    app.add_middleware(BodyLimit, max_body_mb=limits.max_body_mb, max_upload_mb=limits.max_upload_mb)
    for module in (ingest, search, corpora, health, cache, ui):
        app.include_router(module.router)
    return app
