"""GET /corpora."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import ResourcesDep

router = APIRouter(tags=["corpora"])


@router.get("/corpora")
def corpora(res: ResourcesDep) -> dict[str, Any]:
    return {"corpora": [res.catalog.summary(name) for name in res.catalog.corpora()]}
