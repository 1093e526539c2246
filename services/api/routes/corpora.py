"""GET /corpora."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.auth import DENIED, ReaderDep
from services.api.deps import CatalogDep
from services.api.errors import ERRORS
from services.api.schemas import CorpusList

router = APIRouter(tags=["corpora"], responses=DENIED)


@router.get("/corpora", response_model=CorpusList, responses=ERRORS)
def corpora(principal: ReaderDep, catalog: CatalogDep) -> dict[str, Any]:
    """The corpora the key may use."""
    names = [name for name in catalog.corpora() if principal.may_use(name)]
    return {"corpora": [catalog.summary(name) for name in names]}
