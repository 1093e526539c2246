"""GET /health (readiness: Redis, the store, the workers, the queues and the query gate) and
GET /health/live (liveness: the process answers, whatever its dependencies). Open to probes
without a key; with auth on, only an admin key sees more than the status.

/health runs on the event loop with short timeouts, never in the thread pool that cold queries
fill, so it answers within a couple of seconds whatever the load: Redis through the async
client in two round trips (no SCAN), the store through a probe thread of its own (one check
in flight at a time), both at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.api.deps import ContextDep
from services.api.errors import ERRORS
from services.api.schemas import HealthReport
from shared.tasks.app import ALL_QUEUES, queue_keys
from shared.tasks.heartbeat import parse_heartbeats

router = APIRouter(tags=["health"])

REDIS_TIMEOUT_S = 1.0
STORE_TIMEOUT_S = 2.0


class StoreProbe:
    """store.healthy() in a thread of its own; a check still running is awaited, not repeated,
    so a hung store ties up one thread, not one per request."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-probe")
        self._running: Future[bool] | None = None

    async def check(self, store: Any, *, timeout_s: float) -> bool:
        if self._running is None or self._running.done():
            self._running = self._pool.submit(store.healthy)
        return await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._running)),
                                      timeout_s)


_probe = StoreProbe()


@router.get("/health/live", responses={500: ERRORS[500]})
async def live() -> dict[str, str]:
    """Answers while the event loop runs. It checks no dependency on purpose: restarting
    this process would not fix a Redis outage, which /health (readiness) reports."""
    return {"status": "ok"}


@router.get(
    "/health",
    response_model=HealthReport,
    responses={
        500: ERRORS[500],
        503: {"model": HealthReport, "description": "degraded: a component is down"},
    },
)
async def health(request: Request, ctx: ContextDep) -> JSONResponse:
    res = ctx.resources
    store_check = asyncio.ensure_future(_store(res))
    report: dict[str, Any] = {"redis": await _redis(ctx)}
    report["store"] = await store_check
    ok = report["redis"]["ok"] and report["store"]["ok"]
    if "workers" in report["redis"]:
        workers = report["redis"].pop("workers")
        report["queues"] = report["redis"].pop("queues")
        consumed = {q for w in workers for q in w["queues"]}
        missing = [q for q in ALL_QUEUES if q not in consumed]
        report["workers"] = {"ok": not missing, "live": workers,
                             "queues_without_consumer": missing}
        ok = ok and not missing
    report["queries"] = ctx.query_gate.stats()
    report["status"] = "ok" if ok else "degraded"
    if not ctx.guard.shows_detail(request.headers):
        report = {"status": report["status"]}
    return JSONResponse(report, status_code=200 if ok else 503)


async def _redis(ctx: Any) -> dict[str, Any]:
    """Ping, queue depths and the worker registry in one round trip; then the heartbeats."""
    keys, names = ctx.resources.keys, queue_keys(ctx.resources.settings)
    try:
        async with asyncio.timeout(REDIS_TIMEOUT_S):
            pipe = ctx.aredis.pipeline(transaction=False)
            pipe.ping()
            pipe.smembers(keys.worker_registry())
            for queue in ALL_QUEUES:
                pipe.llen(names[queue])
            pipe.hlen(names["unacked"])
            _, members, *depths = await pipe.execute()
            workers = sorted(m.decode() for m in members)
            beats = [keys.worker_heartbeat(w) for w in workers]
            values = await ctx.aredis.mget(beats) if beats else []
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {REDIS_TIMEOUT_S:g} s"}
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        return {"ok": False, "error": f"unreachable ({type(exc).__name__})"}
    live, _ = parse_heartbeats(workers, values)
    queues = dict(zip((*ALL_QUEUES, "unacked"), (int(n) for n in depths), strict=True))
    return {"ok": True, "workers": live, "queues": queues}


async def _store(res: Any) -> dict[str, Any]:
    about = {"kind": type(res.store).__name__,
             "owner": "api" if res.settings.embedded_store else "shared"}
    try:
        return {"ok": await _probe.check(res.store, timeout_s=STORE_TIMEOUT_S), **about}
    except TimeoutError:
        return {"ok": False, "error": f"no answer within {STORE_TIMEOUT_S:g} s", **about}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"unreachable ({type(exc).__name__})", **about}
