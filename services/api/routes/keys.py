"""POST /keys, GET /keys, DELETE /keys/{id}: API keys, managed by admin keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.api.auth import DENIED, AdminDep
from services.api.deps import GuardDep, KeyStoreDep
from services.api.errors import ERRORS, NOT_FOUND
from services.api.schemas import KeyCreate, KeyCreated, KeyInfo, KeyList
from shared.auth import Role
from shared.auth.guard import BOOTSTRAP_ID
from shared.errors import NotFoundError
from shared.identity import check_corpus_name

router = APIRouter(prefix="/keys", tags=["keys"], responses={**ERRORS, **DENIED})


@router.post("", status_code=201, response_model=KeyCreated)
def create(body: KeyCreate, _: AdminDep, store: KeyStoreDep, guard: GuardDep) -> dict[str, Any]:
    """A new key; the response holds the key itself, which is never shown again."""
    for corpus in body.corpora or ():
        check_corpus_name(corpus)
    record, token = store.create(role=Role(body.role), name=body.name, corpora=body.corpora)
    guard.ring.reload(store)  # usable at once on this replica; others follow within a second
    return {**record.public(), "key": token}


@router.get("", response_model=KeyList)
def list_keys(_: AdminDep, store: KeyStoreDep) -> dict[str, Any]:
    return {"keys": [k.public() for k in store.list()]}


@router.delete("/{key_id}", response_model=KeyInfo, responses=NOT_FOUND)
def revoke(key_id: str, _: AdminDep, store: KeyStoreDep, guard: GuardDep) -> dict[str, Any]:
    """Revoke a key: it stops working at once on this replica, within a second on others."""
    if key_id == BOOTSTRAP_ID:
        raise NotFoundError(
            "the bootstrap admin key is not stored: change or unset RAG_ADMIN_KEY and restart"
        )
    record = store.revoke(key_id)
    guard.ring.reload(store)
    return record.public()
