"""GET /documents/{doc_id}/pages/{page}.png: a cited page as an image, the passage highlighted.

The document's file is found through the corpus catalog: each source name is a path under
RAG_CORPUS_ROOT, or `upload/NAME` for a file under the uploads folder. A candidate is served
only if it resolves inside that folder and its bytes still hash to the document's id, so a
file edited since ingestion is never shown as the cited one.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from services.api.auth import DENIED, ReaderDep
from services.api.deps import ResourcesDep
from services.api.errors import ERRORS, NOT_FOUND
from shared.errors import NotFoundError
from shared.identity import CORPUS_NAME, check_corpus_name, file_hash, point_id
from shared.parsing.render import render_page_png
from shared.resources import Resources
from shared.state.catalog import DocumentEntry

router = APIRouter(prefix="/documents", tags=["documents"])

UPLOAD_PREFIX = "upload/"
_DOC_ID = re.compile(r"[0-9a-f]{64}")
_hash_lock = threading.Lock()
_hashes: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256
_HASHES_KEPT = 4096
_chunk_lock = threading.Lock()
_chunk_texts: OrderedDict[tuple[str, str], dict[str, str]] = OrderedDict()
_CHUNK_DOCS_KEPT = 8


@router.get(
    "/{doc_id}/pages/{page}.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The page as PNG."},
        **ERRORS,
        **NOT_FOUND,
        **DENIED,
    },
)
def page_image(
    doc_id: str,
    page: int,
    res: ResourcesDep,
    principal: ReaderDep,
    corpus: Annotated[
        str,
        Query(
            max_length=64,
            description="The corpus holding the document.",
            json_schema_extra={"pattern": f"^{CORPUS_NAME.pattern}$"},  # refused with a 400
        ),
    ] = "default",
    chunk_id: Annotated[str | None, Query(description="Highlight this chunk's passage.")] = None,
    text: Annotated[
        str | None,
        Query(max_length=8000, description="Highlight this passage (instead of chunk_id's)."),
    ] = None,
    scale: Annotated[float, Query(ge=0.5, le=3.0, description="1.0 is 72 dpi.")] = 1.5,
) -> Response:
    """Page `page` (from 1) of a PDF document; 404 with the reason for anything else."""
    check_corpus_name(corpus)
    principal.require_corpus(corpus)
    entry = res.catalog.document(corpus, doc_id) if _DOC_ID.fullmatch(doc_id) else None
    if entry is None:
        raise NotFoundError(f"document {doc_id!r} is not in corpus {corpus!r}")
    if entry.format != "pdf":
        raise NotFoundError(
            f"document {doc_id[:12]} ({entry.title!r}) is a {entry.format} document: "
            "only pages of PDF documents can be shown as images"
        )
    path = document_file(res, entry)
    passage = text or (passage_of_chunk(res, path, entry, chunk_id) if chunk_id else None)
    label = Path(entry.sources[0]).name if entry.sources else path.name
    rendered = render_page_png(path, page=page, passage=passage, scale=scale, name=label)
    return Response(
        content=rendered.png,
        media_type="image/png",
        headers={
            "X-Page-Count": str(rendered.page_count),
            "X-Highlight-Rects": str(rendered.highlight_rects),
            "Cache-Control": "private, max-age=300",
        },
    )


def document_file(res: Resources, entry: DocumentEntry) -> Path:
    """The file behind `entry`, inside the corpus root or the uploads folder; else 404."""
    root = res.settings.root
    uploads = res.settings.uploads_dir
    for source in entry.sources:
        if source.startswith(UPLOAD_PREFIX):
            name = source[len(UPLOAD_PREFIX) :]
            folders = sorted(uploads.iterdir()) if uploads.is_dir() else []
            candidates = [(folder / name, uploads) for folder in folders if folder.is_dir()]
        else:
            candidates = [(root / source, root)]
        for candidate, base in candidates:
            if _is_the_file(candidate, base=base, doc_id=entry.doc_id):
                return candidate.resolve()
    shown = ", ".join(entry.sources[:3]) or "none"
    raise NotFoundError(
        f"document {entry.doc_id[:12]} ({entry.title!r}): its file is no longer where it was "
        f"ingested (sources: {shown}) or has changed since"
    )


def _is_the_file(candidate: Path, *, base: Path, doc_id: str) -> bool:
    try:
        resolved = candidate.resolve()
        if not resolved.is_relative_to(base.resolve()) or not resolved.is_file():
            return False  # never read outside the corpus root or the uploads folder
        stat = resolved.stat()
    except OSError:
        return False
    key = (str(resolved), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        known = _hashes.get(key)
    if known is None:
        known = file_hash(resolved)
        with _hash_lock:
            if len(_hashes) >= _HASHES_KEPT:
                _hashes.clear()
            _hashes[key] = known
    return known == doc_id


def passage_of_chunk(res: Resources, path: Path, entry: DocumentEntry, chunk_id: str) -> str | None:
    """The text of chunk `chunk_id`, re-derived from the file (the store has no lookup by id).

    Chunking is deterministic, so parsing the file again and chunking it with the settings
    the document was indexed with yields the same ids; a document indexed under other
    settings gives None (the page is served without a highlight).
    """
    signature = res.chunking_signature
    if entry.chunking != signature:
        return None
    key = (entry.doc_id, signature)
    with _chunk_lock:
        texts = _chunk_texts.get(key)
        if texts is not None:
            _chunk_texts.move_to_end(key)
    if texts is None:
        from shared.parsing import ParseError, parse_file_with_timeout

        limits = res.settings.limits
        try:
            document = parse_file_with_timeout(
                path,
                timeout_s=limits.parse_timeout_s,
                max_pages=limits.max_pages,
                max_bytes=int(limits.max_file_mb * 2**20),
            )
        except ParseError:
            return None
        texts = {
            point_id(doc_id=entry.doc_id, chunk_index=c.index, chunking_signature=signature): c.text
            for c in res.chunker.chunk(document)
        }
        with _chunk_lock:
            _chunk_texts[key] = texts
            while len(_chunk_texts) > _CHUNK_DOCS_KEPT:
                _chunk_texts.popitem(last=False)
    return texts.get(chunk_id)
