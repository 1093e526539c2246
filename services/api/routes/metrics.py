"""GET /metrics: the whole cluster's metrics in Prometheus text format.

Open unless RAG_METRICS_TOKEN is set; then `Authorization: Bearer <token>` is required.
Recorded counters come from Redis (see shared/telemetry/metrics.py); queue depths, jobs by
state and live workers are read at scrape time.
"""

from __future__ import annotations

import hmac

import redis
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from services.api.deps import ResourcesDep
from services.api.errors import ERRORS
from services.api.schemas import ErrorBody
from shared.cache import CacheStats
from shared.errors import ServiceUnavailableError
from shared.resources import Resources
from shared.tasks.app import queue_depths
from shared.tasks.heartbeat import live_workers
from shared.telemetry import metrics

router = APIRouter(tags=["operations"])


def _authorised(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _read_at_scrape(res: Resources) -> list[metrics.Family]:
    cache = CacheStats(res.cache_redis, res.keys).counters()
    workers = live_workers(res.redis, res.keys)
    return [
        metrics.counter(
            "rag_cache_requests_total",
            "Cache lookups by tier and result (hit or miss). Purging a tier resets its counts.",
            ("tier", "result"),
            [((tier, result), float(c[field])) for tier, c in cache.items()
             for result, field in (("hit", "hits"), ("miss", "misses"))],
        ),
        metrics.gauge(
            "rag_queue_depth",
            "Messages waiting in each queue; 'unacked': delivered and not yet acknowledged.",
            "queue",
            {q: float(n) for q, n in queue_depths(res.redis, res.settings).items()},
        ),
        metrics.gauge(
            "rag_jobs", "Ingestion jobs in each state (finished ones until they expire).",
            "state", {s: float(n) for s, n in res.jobs.count_by_state().items()},
        ),
        metrics.gauge(
            "rag_workers", "Live processes consuming each queue (by their heartbeats).",
            "queue", {q: float(sum(q in w["queues"] for w in workers))
                      for q in ("ingest", "embed", "index")},
        ),
    ]


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        401: {"model": ErrorBody,
              "description": "RAG_METRICS_TOKEN is set and the bearer token is missing or wrong"},
        500: ERRORS[500],
        503: ERRORS[503],
    },
)
def metrics_endpoint(request: Request, res: ResourcesDep) -> Response:
    token = res.settings.telemetry.metrics_token
    if token and not _authorised(request.headers.get("authorization"), token):
        return JSONResponse(
            {"error": "unauthorized",
             "detail": "GET /metrics needs 'Authorization: Bearer <RAG_METRICS_TOKEN>'"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        metrics.flush()  # this replica's latest counts first
        families = [*metrics.collect(res.redis, res.keys), *_read_at_scrape(res)]
    except redis.RedisError:
        raise ServiceUnavailableError("Redis is unreachable; metrics need it; try again shortly") from None
    return Response(metrics.render(families), media_type=metrics.CONTENT_TYPE)
