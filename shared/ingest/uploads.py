"""Uploaded files on disk: kept while a job may read them, removed when no job needs them.

An upload's folder (RAG_DATA_DIR/uploads/<id>) is the root of its job. When the job ends with
every file indexed (or unchanged), the folder goes at once. When a retry could still need it
(a file failed, the job was cancelled or stalled), it stays, and its modification time starts
a retention clock: `sweep_uploads` deletes folders untouched for RAG_UPLOAD_RETENTION_H that no
queued or running job uses. A retry touches the folder, so it starts the clock again.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from shared.resources import Resources

log = logging.getLogger(__name__)

KEPT_OUTCOMES = frozenset({"indexed", "unchanged"})


def upload_folder(raw: dict[str, str]) -> Path | None:
    """The folder of an upload job (from its raw record); None for a job over a path."""
    return Path(raw["abs_path"]) if raw.get("origin") == "upload" else None


def touch(folder: Path) -> None:
    """Start (or restart) the folder's retention clock."""
    try:
        os.utime(folder)
    except FileNotFoundError:
        pass


def release_upload(
    raw: dict[str, str],
    files: list[dict[str, Any]],
    *,
    state: str,
    keep_pages_in: Path | None = None,
) -> None:
    """At the end of a job: delete its upload now if nothing is left to retry, else keep it
    for RAG_UPLOAD_RETENTION_H. The PDFs among them first move to `keep_pages_in` under their
    content hash (the document id), so their pages can still be shown with citations."""
    folder = upload_folder(raw)
    if folder is None:
        return
    done = state == "succeeded" and all(f.get("outcome") in KEPT_OUTCOMES for f in files)
    if done:
        if keep_pages_in is not None:
            keep_pdfs(folder, keep_pages_in)
        shutil.rmtree(folder, ignore_errors=True)
    else:
        touch(folder)


def keep_pdfs(folder: Path, dest: Path) -> None:
    """Move each PDF of `folder` to `dest/<sha256>.pdf` (one copy per content)."""
    from shared.identity import file_hash

    dest.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.suffix.lower() != ".pdf" or not path.is_file() or path.is_symlink():
            continue
        try:
            target = dest / f"{file_hash(path)}.pdf"
            if not target.exists():
                os.replace(path, target)
        except OSError:
            log.warning("could not keep %s for page images", path.name)


def sweep_uploads(res: Resources, *, now: float | None = None) -> list[str]:
    """Delete upload folders past their retention that no queued or running job uses; returns
    their names. Safe to run in every API replica at once."""
    uploads = res.settings.uploads_dir
    if not uploads.is_dir():
        return []
    now = time.time() if now is None else now
    retention_s = res.settings.limits.upload_retention_h * 3600
    in_use = {res.jobs.field(job_id, "abs_path") for job_id in res.jobs.iter_running()}
    removed = []
    for folder in uploads.iterdir():
        if not folder.is_dir() or str(folder) in in_use:
            continue
        try:
            idle = now - folder.stat().st_mtime
        except FileNotFoundError:
            continue
        if idle >= retention_s:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    if removed:
        log.info("removed %d expired upload folders (RAG_UPLOAD_RETENTION_H)", len(removed))
    return removed
