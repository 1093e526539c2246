"""Ingestion jobs: start (path or upload), status, list, live events, cancel."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from services.api.auth import DENIED, ReaderDep, WriterDep
from services.api.deps import CatalogDep, DispatcherDep, JobsDep, SettingsDep, StagingDep
from services.api.errors import CONFLICT, ERRORS, NOT_FOUND, TOO_LARGE
from services.api.schemas import (
    MAX_PASSWORD_CHARS,
    MAX_PASSWORDS,
    IngestStart,
    JobAccepted,
    JobList,
    JobRecord,
    RejectedFile,
    clean_text,
)
from services.api.uploads import UPLOAD_BODY, ReceivedUpload, receive_upload, safe_upload_name
from shared.errors import ConflictError, InvalidRequestError, PayloadTooLargeError
from shared.identity import check_corpus_name
from shared.ingest.payloads import SCAN, ScanMsg
from shared.ingest.sources import resolve_ingest_path, source_name
from shared.ingest.uploads import mark_corpus, release_upload, touch, upload_folder
from shared.state.jobs import TERMINAL_STATES, JobStore

__all__ = ["router", "safe_upload_name"]

router = APIRouter(prefix="/ingest", tags=["ingest"], responses=DENIED)
KEEPALIVE_S = 10
JobId = Annotated[
    str, PathParam(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="The job's id.")
]


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
        path=source_name(target, root=root),  # shown to clients: never a server path
        abs_path=str(target),
        root=str(root),
        sync=body.sync,
        passwords=body.passwords,
        owner=principal.key_id,
    )
    dispatch.send(SCAN, ScanMsg(job_id=job_id))
    return JobAccepted(job_id=job_id)


@router.post(
    "/upload",
    status_code=202,
    response_model=JobAccepted,
    responses={**ERRORS, **TOO_LARGE},
    openapi_extra=UPLOAD_BODY,
)
async def upload(
    request: Request,
    principal: WriterDep,
    settings: SettingsDep,
    jobs: JobsDep,
    dispatch: DispatcherDep,
) -> JobAccepted:
    """Multipart `files` (and `corpus`, `passwords`), streamed to disk as they arrive: a file
    over RAG_MAX_FILE_MB is rejected by name, a request over RAG_MAX_UPLOAD_MB is a 413."""
    limits = settings.limits
    upload_id = uuid.uuid4().hex[:12]
    folder = settings.uploads_dir / upload_id
    folder.mkdir(parents=True, exist_ok=True)
    job_id = None
    try:
        received = await receive_upload(
            request,
            folder,
            max_file_bytes=int(limits.max_file_mb * 2**20),
            max_total_bytes=int(limits.max_upload_mb * 2**20),
            max_files=limits.max_upload_files,
        )
        corpus = _form_text(received.fields.get("corpus", ["default"])[-1], "corpus")
        check_corpus_name(corpus)
        principal.require_corpus(corpus)
        passwords = [_form_text(p, "passwords") for p in received.fields.get("passwords", [])]
        if len(passwords) > MAX_PASSWORDS:
            raise InvalidRequestError(f"passwords: more than {MAX_PASSWORDS}")
        accepted, rejected = await run_in_threadpool(_check_contents, received)
        mark_corpus(folder, corpus)  # for the retention sweep: which catalog to ask
        if not accepted:
            if not rejected:
                raise InvalidRequestError("files: no file in the request")
            too_large = all("RAG_MAX_FILE_MB" in r.error for r in rejected)
            error = PayloadTooLargeError if too_large else InvalidRequestError
            raise error("no file accepted: " + "; ".join(r.error for r in rejected))
        job_id = await run_in_threadpool(
            partial(
                jobs.create,
                corpus=corpus,
                path=f"upload:{upload_id}",
                abs_path=str(folder),
                root=str(folder),
                source_prefix="upload/",
                passwords=passwords,
                origin="upload",
                owner=principal.key_id,
            )
        )
        await run_in_threadpool(dispatch.send, SCAN, ScanMsg(job_id=job_id))
    except BaseException:
        if job_id is None:  # no job will read it (else the retention sweep removes it)
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return JobAccepted(job_id=job_id, rejected=rejected)


def _form_text(value: str, field: str) -> str:
    try:
        value = clean_text(value)
    except ValueError as exc:
        raise InvalidRequestError(f"{field}: {exc}") from None
    if len(value) > MAX_PASSWORD_CHARS:
        raise InvalidRequestError(f"{field}: longer than {MAX_PASSWORD_CHARS} characters")
    return value


def _check_contents(received: ReceivedUpload) -> tuple[list[str], list[RejectedFile]]:
    """The saved files whose bytes are an ingestible format; the others removed and rejected."""
    from shared.parsing import ParseError, detect_format

    accepted: list[str] = []
    rejected = list(received.rejected)
    for original, dest in received.saved:
        try:
            detect_format(dest)
            accepted.append(dest.name)
        except ParseError as exc:
            dest.unlink(missing_ok=True)
            rejected.append(RejectedFile(file=original, error=f"{original}: {exc}"))
    return accepted, rejected


@router.get("/status/{job_id}", response_model=JobRecord, responses={**ERRORS, **NOT_FOUND})
def status(job_id: JobId, principal: ReaderDep, jobs: JobsDep) -> dict[str, Any]:
    record = jobs.record(job_id)
    principal.require_job_visible(job_id=job_id, owner=record["owner"], corpus=record["corpus"])
    return record


@router.get("/list", response_model=JobList, responses=ERRORS)
def list_jobs(
    principal: ReaderDep,
    jobs: JobsDep,
    state: Annotated[
        str | None, Query(max_length=32, description="queued, running, succeeded, ...")
    ] = None,
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
    job_id: JobId, principal: WriterDep, jobs: JobsDep, catalog: CatalogDep, staging: StagingDep
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
    release_upload(jobs.raw(job_id), [], state="cancelled")  # kept for a retry, for a while
    return jobs.record(job_id)


@router.post("/retry/{job_id}", status_code=202, responses={**ERRORS, **NOT_FOUND, **CONFLICT})
def retry(
    job_id: JobId, principal: WriterDep, jobs: JobsDep, dispatch: DispatcherDep
) -> JobAccepted:
    """A new job over the same files: what succeeded is unchanged and skipped, the rest redone."""
    raw = jobs.raw(job_id)
    principal.require_job_control(job_id=job_id, corpus=raw["corpus"])
    if raw["state"] not in TERMINAL_STATES:
        raise ConflictError(f"job {job_id} is still {raw['state']}: cancel it or wait")
    if not Path(raw["abs_path"]).exists():
        kept = " (uploads are kept RAG_UPLOAD_RETENTION_H after their job)" if raw.get(
            "origin") == "upload" else ""
        raise ConflictError(f"job {job_id}: its files at {raw['path']!r} are gone{kept}")
    if (folder := upload_folder(raw)) is not None:
        touch(folder)  # its retention clock starts again
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
        **ERRORS,
        **NOT_FOUND,
    },
)
async def events(
    job_id: JobId, request: Request, principal: ReaderDep, jobs: JobsDep, settings: SettingsDep
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
