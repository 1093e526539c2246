"""Uploaded files on disk: kept while a job may retry them or a document is made of them,
removed when nothing needs them.

An upload's folder (RAG_DATA_DIR/uploads/<id>) is the root of its job; a hidden `.corpus`
file in it names the corpus. What needs a file:
- a retry: a job that ended with a file failed (or was cancelled, or stalled) keeps its whole
  folder, and its modification time starts a retention clock (a retry restarts it);
- a document: an indexed file backs its document in the catalog (`upload/NAME`), whose cited
  pages GET /documents/... renders from it, so it stays while the catalog holds that source.
So at the end of a job (not a retry) the files that were `unchanged` (the same bytes under the
same name are indexed already, from an earlier upload) go at once, and `sweep_uploads` later deletes, in a
folder untouched for RAG_UPLOAD_RETENTION_H that no queued or running job uses, every file no
document of its corpus is made of; a folder left without files goes.
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

CORPUS_MARKER = ".corpus"
UPLOAD_PREFIX = "upload/"


def upload_folder(raw: dict[str, str]) -> Path | None:
    """The folder of an upload job (from its raw record); None for a job over a path."""
    return Path(raw["abs_path"]) if raw.get("origin") == "upload" else None


def mark_corpus(folder: Path, corpus: str) -> None:
    (folder / CORPUS_MARKER).write_text(corpus, encoding="utf-8")


def touch(folder: Path) -> None:
    """Start (or restart) the folder's retention clock."""
    try:
        os.utime(folder)
    except FileNotFoundError:
        pass


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]


def release_upload(raw: dict[str, str], files: list[dict[str, Any]], *, state: str) -> None:
    """At the end of a job: keep everything for a retry if a file failed (or the job did not
    succeed), else drop the files whose bytes were indexed already from an earlier upload."""
    folder = upload_folder(raw)
    if folder is None or not folder.is_dir():
        return
    if state != "succeeded" or any(f.get("outcome") == "failed" for f in files):
        touch(folder)
        return
    if raw.get("retry_of"):
        return  # its unchanged files are the very copies their documents were made of
    for f in files:
        name = str(f.get("file", "")).removeprefix(UPLOAD_PREFIX)
        if f.get("outcome") == "unchanged" and name and "/" not in name:
            (folder / name).unlink(missing_ok=True)
    if not _files(folder):
        shutil.rmtree(folder, ignore_errors=True)


def sweep_uploads(res: Resources, *, now: float | None = None) -> list[str]:
    """Remove what no retry and no document needs from upload folders past their retention;
    returns the names of the files removed. Safe to run in every API replica at once."""
    uploads = res.settings.uploads_dir
    if not uploads.is_dir():
        return []
    now = time.time() if now is None else now
    retention_s = res.settings.limits.upload_retention_h * 3600
    in_use = {res.jobs.field(job_id, "abs_path") for job_id in res.jobs.iter_running()}
    removed: list[str] = []
    for folder in uploads.iterdir():
        if not folder.is_dir() or str(folder) in in_use:
            continue
        try:
            if now - folder.stat().st_mtime < retention_s:
                continue
            corpus = (folder / CORPUS_MARKER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            corpus = ""
        files = _files(folder)
        kept = [f for f in files
                if corpus and res.catalog.source_doc(corpus, UPLOAD_PREFIX + f.name)]
        for f in files:
            if f not in kept:
                f.unlink(missing_ok=True)
                removed.append(f"{folder.name}/{f.name}")
        if kept:
            touch(folder)  # looked at again one retention period from now
        else:
            shutil.rmtree(folder, ignore_errors=True)
    if removed:
        log.info("removed %d uploaded files no job or document needs (RAG_UPLOAD_RETENTION_H)",
                 len(removed))
    return removed
