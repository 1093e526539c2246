"""The API application: `create_app(settings)`; `rag serve` runs it under uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.api.context import ApiContext, CacheLookup
from services.api.errors import install_error_handlers
from services.api.observability import RequestTelemetry, flush_metrics_forever
from services.api.routes import admin, cache, corpora, health, ingest, metrics, search, ui
from shared.search.answerer import Answerer
from shared.tasks.app import CeleryDispatcher, make_celery
from shared.vectors.embedding import threads_for
from shared.ingest.staging import Staging
from shared.resources import Resources
from shared.search.retriever import Retriever
from shared.settings import Settings, warn_unknown_settings
from shared.telemetry import metrics as telemetry

log = logging.getLogger(__name__)


async def _watch_stalls(res: Resources) -> None:
    """Every API replica looks; failing a stalled job is idempotent."""
    from starlette.concurrency import run_in_threadpool

    from shared.tasks.stalls import fail_stalled_jobs

    stall_s = res.settings.jobs.stall_s
    while True:
        await asyncio.sleep(min(30.0, max(1.0, stall_s / 4)))
        try:
            await run_in_threadpool(fail_stalled_jobs, res, stall_s=stall_s)
        except Exception:  # noqa: BLE001 - Redis may be down for a moment; look again later
            log.exception("stall check failed")


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
        )
        watchdog = asyncio.create_task(_watch_stalls(res))
        flusher = asyncio.create_task(flush_metrics_forever())
        try:
            yield
        finally:
            watchdog.cancel()
            flusher.cancel()
            await cache_lookup.aclose()
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
    app.add_middleware(RequestTelemetry)
    for module in (ingest, search, corpora, health, cache, ui, metrics, admin):
        app.include_router(module.router)
    return app
