"""GET /cache/stats and DELETE /cache/{tier}."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import ResourcesDep
from shared.cache import TIERS, CacheStats
from shared.errors import NotFoundError

router = APIRouter(prefix="/cache", tags=["cache"])


@router.get("/stats")
def stats(res: ResourcesDep) -> dict[str, Any]:
    return CacheStats(res.redis, res.keys).all()


@router.delete("/{tier}")
def purge(tier: str, res: ResourcesDep) -> dict[str, Any]:
    if tier != "all" and tier not in TIERS:
        raise NotFoundError(f"cache tier {tier!r}: use one of {', '.join(TIERS)} or all")
    cache = CacheStats(res.redis, res.keys)
    tiers = TIERS if tier == "all" else (tier,)
    return {"purged": {t: cache.purge(t) for t in tiers}}
