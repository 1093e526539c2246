"""Celery task registration for the stages, shared by the worker and the store-owning API.

Tasks are thin: unpack the message, call the stage with this process's resources. Transient
failures (Redis, the store's connection) retry with backoff; a file's own failure does not.
Each stage runs with its job id bound, so every line it logs names the job.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery

from shared.ingest import stages
from shared.ingest.payloads import (
    EMBED,
    FINALIZE,
    INDEX,
    PARSE,
    SCAN,
    EmbedMsg,
    FinalizeMsg,
    IndexMsg,
    ParseMsg,
    ScanMsg,
)
from shared.resources import Resources
from shared.tasks.app import CeleryDispatcher
from shared.telemetry.logging import bind_job


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Errors of a connection, not of the work: Redis, or the store's HTTP/gRPC transport."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException

    return (
        redis.ConnectionError,
        redis.TimeoutError,
        ConnectionError,
        TimeoutError,
        httpx.TransportError,
        ResponseHandlingException,
    )


TRANSIENT = _transient_errors()
_RETRY: dict[str, Any] = {
    "autoretry_for": TRANSIENT,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
    "max_retries": 8,
}

ResourcesGetter = Callable[[], Resources]


def register_store_tasks(app: Celery, get: ResourcesGetter) -> None:
    """INDEX and FINALIZE: they write the store, so they run where the store is owned."""
    dispatch = CeleryDispatcher(app)

    @app.task(name=INDEX, **_RETRY)
    def index_task(msg: dict[str, Any]) -> None:
        res = get()
        with bind_job(msg["job_id"]), res.store_writes:
            stages.index(res, IndexMsg(**msg), dispatch)

    @app.task(name=FINALIZE, **_RETRY)
    def finalize_task(msg: dict[str, Any]) -> None:
        res = get()
        with bind_job(msg["job_id"]), res.store_writes:
            stages.finalize(res, FinalizeMsg(**msg), dispatch)


def register_ingest_tasks(app: Celery, get: ResourcesGetter, *, parse_time_limit_s: float) -> None:
    """SCAN, PARSE and EMBED: stateless, any number of worker processes share them."""
    dispatch = CeleryDispatcher(app)

    @app.task(name=SCAN, **_RETRY)
    def scan_task(msg: dict[str, Any]) -> None:
        with bind_job(msg["job_id"]):
            stages.scan(get(), ScanMsg(**msg), dispatch)

    @app.task(name=PARSE, soft_time_limit=parse_time_limit_s, **_RETRY)
    def parse_task(msg: dict[str, Any]) -> None:
        with bind_job(msg["job_id"]):
            stages.parse(get(), ParseMsg(**msg), dispatch)

    @app.task(name=EMBED, bind=True, **_RETRY)
    def embed_task(self: Any, msg: dict[str, Any]) -> None:
        worker = f"{self.request.hostname or socket.gethostname()}"
        with bind_job(msg["job_id"]):
            stages.embed(get(), EmbedMsg(**msg), dispatch, worker=worker)
