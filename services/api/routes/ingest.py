"""Ingestion jobs: start (path or upload), status, list, live events, cancel."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from services.api.auth import DENIED, ReaderDep, WriterDep
from services.api.deps import CatalogDep, DispatcherDep, JobsDep, SettingsDep, StagingDep
from services.api.errors import CONFLICT, ERRORS, NOT_FOUND, TOO_LARGE
from services.api.schemas import IngestStart, JobAccepted, JobList, JobRecord, RejectedFile
from shared.errors import ConflictError, InvalidRequestError, PayloadTooLargeError
from shared.identity import check_corpus_name
from shared.ingest.payloads import SCAN, ScanMsg
from shared.ingest.sources import INGESTIBLE_SUFFIXES, resolve_ingest_path
from shared.state.jobs import TERMINAL_STATES, JobStore

router = APIRouter(prefix="/ingest", tags=["ingest"], responses=DENIED)
KEEPALIVE_S = 10


@router.post("/start", status_code=202, responses=ERRORS)
def start(
    body: IngestStart,
    principal: WriterDep,
    settings: SettingsDep,
    jobs: JobsDep,
    dispatch: DispatcherDep,
) -> JobAccepted:
    check_corpus_name(body.corpus)
    principal.require_corpus(body.corpus)
    root = settings.root
    target = resolve_ingest_path(body.path, root=root)
    job_id = jobs.create(
        corpus=body.corpus,
        path=body.path,
        abs_path=str(target),
        root=str(root),
        sync=body.sync,
        passwords=body.passwords,
        owner=principal.key_id,
    )
    dispatch.send(SCAN, ScanMsg(job_id=job_id))
    return JobAccepted(job_id=job_id)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


def safe_upload_name(name: str) -> str:
    """The last path component, stripped to safe characters; never '.', '..' or hidden."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _SAFE_NAME.sub("_", base).strip(" .")
    if not base:
        raise InvalidRequestError(f"files: {name!r} is not a usable file name")
    return base[:200]


@router.post("/upload", status_code=202, responses={**ERRORS, **TOO_LARGE})
async def upload(
    principal: WriterDep,
    settings: SettingsDep,
    jobs: JobsDep,
    dispatch: DispatcherDep,
    files: Annotated[list[UploadFile], File(description="Papers to ingest")],
    corpus: Annotated[str, Form()] = "default",
    passwords: Annotated[list[str] | None, Form()] = None,
) -> JobAccepted:
    check_corpus_name(corpus)
    principal.require_corpus(corpus)
    limits = settings.limits
    if len(files) > limits.max_upload_files:
        raise InvalidRequestError(
            f"files: {len(files)} files, over the limit RAG_MAX_UPLOAD_FILES={limits.max_upload_files}"
        )
    upload_id = uuid.uuid4().hex[:12]
    folder = settings.uploads_dir / upload_id
    folder.mkdir(parents=True, exist_ok=True)
    max_bytes = int(limits.max_file_mb * 2**20)
    accepted: list[str] = []
    rejected: list[RejectedFile] = []
    for item in files:
        original = item.filename or ""
        try:
            name = safe_upload_name(original)
            if Path(name).suffix.lower() not in INGESTIBLE_SUFFIXES:
                raise InvalidRequestError(
                    f"{original}: unsupported file type; send "
                    + ", ".join(sorted(INGESTIBLE_SUFFIXES))
                )
            dest = folder / name
            stem, suffix, n = dest.stem, dest.suffix, 1
            while dest.exists():  # two files of one upload with the same name
                dest = folder / f"{stem}-{n}{suffix}"
                n += 1
            await _save_limited(item, dest, max_bytes=max_bytes, label=original)
            _check_content(dest, label=original)
            accepted.append(dest.name)
        except (InvalidRequestError, PayloadTooLargeError) as exc:
            rejected.append(RejectedFile(file=original, error=exc.detail))
    if not accepted:
        folder.rmdir() if not any(folder.iterdir()) else None
        status_error = (
            PayloadTooLargeError
            if rejected and all("RAG_MAX_FILE_MB" in r.error for r in rejected)
            else InvalidRequestError
        )
        raise status_error("no file accepted: " + "; ".join(r.error for r in rejected))
    job_id = jobs.create(
        corpus=corpus,
        path=f"upload:{upload_id}",
        abs_path=str(folder),
        root=str(folder),
        source_prefix="upload/",
        passwords=passwords or [],
        origin="upload",
        owner=principal.key_id,
    )
    dispatch.send(SCAN, ScanMsg(job_id=job_id))
    return JobAccepted(job_id=job_id, rejected=rejected)


async def _save_limited(item: UploadFile, dest: Path, *, max_bytes: int, label: str) -> None:
    written = 0
    with dest.open("wb") as out:
        while block := await item.read(1 << 20):
            written += len(block)
            if written > max_bytes:
                out.close()
                dest.unlink(missing_ok=True)
                raise PayloadTooLargeError(
                    f"{label}: over the limit RAG_MAX_FILE_MB={max_bytes / 2**20:g}"
                )
            out.write(block)
    if written == 0:
        dest.unlink(missing_ok=True)
        raise InvalidRequestError(f"{label}: empty file")


def _check_content(dest: Path, *, label: str) -> None:
    from shared.parsing import ParseError, detect_format

    try:
        detect_format(dest)
    except ParseError as exc:
        dest.unlink(missing_ok=True)
        raise InvalidRequestError(f"{label}: {exc}") from None


@router.get("/status/{job_id}", response_model=JobRecord, responses={**ERRORS, **NOT_FOUND})
def status(job_id: str, principal: ReaderDep, jobs: JobsDep) -> dict[str, Any]:
    record = jobs.record(job_id)
    principal.require_job_visible(job_id=job_id, owner=record["owner"], corpus=record["corpus"])
    return record


@router.get("/list", response_model=JobList, responses=ERRORS)
def list_jobs(
    principal: ReaderDep,
    jobs: JobsDep,
    state: Annotated[str | None, Query(description="queued, running, succeeded, ...")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    """The jobs the key may see: its own; a writer's corpora's; every job for an admin."""

    def visible(rec: dict[str, Any]) -> bool:
        return principal.may_see_job(owner=rec["owner"], corpus=rec["corpus"])

    return {"jobs": jobs.list(state=state, limit=limit, visible=visible)}


@router.post(
    "/cancel/{job_id}",
    status_code=202,
    response_model=JobRecord,
    responses={**ERRORS, **NOT_FOUND, **CONFLICT},
)
def cancel(
    job_id: str, principal: WriterDep, jobs: JobsDep, catalog: CatalogDep, staging: StagingDep
) -> dict[str, Any]:
    record = jobs.record(job_id)
    principal.require_job_control(job_id=job_id, corpus=record["corpus"])
    if record["state"] in TERMINAL_STATES:
        raise ConflictError(f"job {job_id} already ended: {record['state']}")
    # Under the corpus lock, no file is half-committed: what is indexed now stays, the rest
    # of the job's work sees the flag and drops out.
    with catalog.lock(record["corpus"]):
        jobs.request_cancel(job_id)
        jobs.finish(job_id, state="cancelled", message="cancelled by request")
    staging.drop_job(job_id)
    return jobs.record(job_id)


@router.post("/retry/{job_id}", status_code=202, responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def retry(
    job_id: str, principal: WriterDep, jobs: JobsDep, dispatch: DispatcherDep
) -> JobAccepted:
    """A new job over the same files: what succeeded is unchanged and skipped, the rest redone."""
    raw = jobs.raw(job_id)
    principal.require_job_control(job_id=job_id, corpus=raw["corpus"])
    if raw["state"] not in TERMINAL_STATES:
        raise ConflictError(f"job {job_id} is still {raw['state']}: cancel it or wait")
    if not Path(raw["abs_path"]).exists():
        raise ConflictError(f"job {job_id}: its files at {raw['path']!r} are gone")
    new_id = jobs.create(
        corpus=raw["corpus"],
        path=raw["path"],
        abs_path=raw["abs_path"],
        root=raw["root"],
        source_prefix=raw.get("source_prefix", ""),
        sync=raw.get("sync") == "1",
        passwords=jobs.passwords(job_id),
        origin=raw.get("origin", "path"),
        owner=principal.key_id,
    )
    jobs.update(new_id, retry_of=job_id)
    dispatch.send(SCAN, ScanMsg(job_id=new_id))
    return JobAccepted(job_id=new_id)


@router.get(
    "/events/{job_id}",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "progress events, then the end"},
        **NOT_FOUND,
    },
)
async def events(
    job_id: str, request: Request, principal: ReaderDep, jobs: JobsDep, settings: SettingsDep
) -> EventSourceResponse:
    raw = await run_in_threadpool(jobs.raw, job_id)  # 404 (or 403) before the stream opens
    principal.require_job_visible(
        job_id=job_id, owner=raw.get("owner") or None, corpus=raw["corpus"]
    )
    last_id = request.headers.get("last-event-id", "0")
    return EventSourceResponse(
        _event_stream(jobs, settings.redis_url, job_id, last_id, request),
        ping=KEEPALIVE_S,
        send_timeout=30,
    )


async def _event_stream(
    jobs: JobStore, redis_url: str, job_id: str, last_id: str, request: Request
) -> Any:
    """History after `last_id` from the job's Stream, then live events (woken by pub/sub)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    try:
        await pubsub.subscribe(jobs.live_channel(job_id))
        while True:
            batch = await run_in_threadpool(jobs.events_after, job_id, last_id)
            for event_id, name, data in batch:
                last_id = event_id
                yield ServerSentEvent(data=data, event=name, id=event_id)
                if name in TERMINAL_STATES:
                    return
            if await request.is_disconnected():
                return
            # Sleep until something is published, or check again soon anyway.
            try:
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
    finally:
        await pubsub.aclose()
        await client.aclose()
