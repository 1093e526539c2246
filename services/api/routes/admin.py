"""POST /admin/backup: a consistent backup of the running embedded deployment, as a tar.gz."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from services.api.auth import DENIED, AdminDep
from services.api.deps import ResourcesDep
from services.api.errors import CONFLICT, ERRORS
from shared.backup import create_backup
from shared.errors import ConflictError

router = APIRouter(prefix="/admin", tags=["operations"], responses=DENIED)


@router.post(
    "/backup",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/gzip": {}},
              "description": "manifest.json, redis.jsonl, store/, uploads/ (see `rag restore`)"},
        **ERRORS,
        **CONFLICT,
    },
)
def backup(res: ResourcesDep, _admin: AdminDep) -> FileResponse:
    """Index writes pause while the keys and the store are copied; queries wait only for the
    store copy. Only the process that owns the embedded store can take it."""
    settings = res.settings
    if not settings.embedded_store:
        raise ConflictError(
            "the store is a Qdrant server: back it up with Qdrant snapshots, and Redis with "
            "its own persistence"
        )
    if not settings.consume_index:
        raise ConflictError(
            "this API process does not own the embedded store (RAG_CONSUME_INDEX=false): "
            "ask the one that does"
        )
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".backup-", dir=settings.data_dir.resolve()))
    try:
        archive = create_backup(res, workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return FileResponse(
        archive,
        media_type="application/gzip",
        filename=archive.name,
        background=BackgroundTask(shutil.rmtree, workdir, ignore_errors=True),
    )
