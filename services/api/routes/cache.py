"""GET /cache/stats and DELETE /cache/{tier}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from services.api.auth import DENIED, AdminDep, ReaderDep
from services.api.deps import CacheStatsDep
from services.api.errors import ERRORS, NOT_FOUND
from services.api.schemas import CacheStatsResponse, PurgeResponse
from shared.cache import TIERS
from shared.errors import NotFoundError

router = APIRouter(prefix="/cache", tags=["cache"], responses=DENIED)


@router.get("/stats", response_model=CacheStatsResponse, responses=ERRORS)
def stats(_: ReaderDep, cache: CacheStatsDep) -> dict[str, Any]:
    return cache.all()


@router.delete("/{tier}", response_model=PurgeResponse, responses={**ERRORS, **NOT_FOUND})
def purge(
    tier: Annotated[str, Path(max_length=32)], _: AdminDep, cache: CacheStatsDep
) -> dict[str, Any]:
    if tier != "all" and tier not in TIERS:
        raise NotFoundError(f"cache tier {tier!r}: use one of {', '.join(TIERS)} or all")
    tiers = TIERS if tier == "all" else (tier,)
    return {"purged": {t: cache.purge(t) for t in tiers}}
