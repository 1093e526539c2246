"""GET /health (readiness: Redis, the store, the workers and the queues) and GET /health/live
(liveness: the process answers, whatever its dependencies). Open to probes without a key; with
auth on, only an admin key sees more than the status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.api.deps import GuardDep, ResourcesDep
from services.api.schemas import HealthReport
from shared.tasks.heartbeat import live_workers

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Answers while the event loop runs. It checks no dependency on purpose: restarting
    this process would not fix a Redis outage, which /health (readiness) reports."""
    return {"status": "ok"}


@router.get(
    "/health",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "degraded: a component is down"}},
)
def health(request: Request, res: ResourcesDep, guard: GuardDep) -> JSONResponse:
    report: dict[str, Any] = {}
    ok = True
    try:
        res.redis.ping()
        report["redis"] = {"ok": True}
    except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
        report["redis"] = {"ok": False, "error": str(exc)}
        ok = False
    try:
        store_ok = res.store.healthy()
        report["store"] = {"ok": store_ok, "kind": type(res.store).__name__,
                           "owner": "api" if res.settings.embedded_store else "shared"}
        ok = ok and store_ok
    except Exception as exc:  # noqa: BLE001
        report["store"] = {"ok": False, "error": str(exc)}
        ok = False
    if report["redis"]["ok"]:
        workers = live_workers(res.redis, res.keys)
        consumed = {q for w in workers for q in w["queues"]}
        missing = [q for q in ("ingest", "embed", "index") if q not in consumed]
        report["workers"] = {"ok": not missing, "live": workers, "queues_without_consumer": missing}
        ok = ok and not missing
        from shared.tasks.app import queue_depths

        report["queues"] = queue_depths(res.redis, res.settings)
    report["status"] = "ok" if ok else "degraded"
    if not guard.shows_detail(request.headers):
        report = {"status": report["status"]}
    return JSONResponse(report, status_code=200 if ok else 503)
