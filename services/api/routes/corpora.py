"""GET /corpora."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.deps import CatalogDep
from services.api.errors import ERRORS
from services.api.schemas import CorpusList

router = APIRouter(tags=["corpora"])


@router.get("/corpora", response_model=CorpusList, responses=ERRORS)
def corpora(catalog: CatalogDep) -> dict[str, Any]:
    return {"corpora": [catalog.summary(name) for name in catalog.corpora()]}
