"""The ingestion stages. Each is idempotent: a redelivered message changes nothing twice."""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path

from shared.documents import ParsedDocument
from shared.identity import file_hash, point_id, text_hash
from shared.ingest.payloads import (
    EMBED,
    FINALIZE,
    INDEX,
    PARSE,
    Dispatcher,
    EmbedMsg,
    FinalizeMsg,
    IndexMsg,
    ParseMsg,
    ScanMsg,
)
from shared.ingest.sources import SourceFile, list_files, source_name, source_scope
from shared.ingest.staging import StagedChunk, StagedDocument, StagedFile, Staging
from shared.ingest.uploads import release_upload
from shared.resources import Resources
from shared.state.catalog import DocumentEntry
from shared.telemetry.metrics import record_embedded_chunks
from shared.vectors.store import ChunkPoint

log = logging.getLogger(__name__)


def _staging(res: Resources) -> Staging:
    return Staging(res.redis, res.keys)


# ---- scan ---------------------------------------------------------------------------------


def scan(res: Resources, msg: ScanMsg, dispatch: Dispatcher) -> None:
    jobs = res.jobs
    if jobs.cancelled(msg.job_id) or jobs.is_terminal(msg.job_id):
        return
    raw = jobs.raw(msg.job_id)
    root = Path(raw["root"])
    prefix = raw.get("source_prefix", "")
    target = Path(raw["abs_path"])
    if not target.exists():
        jobs.update(msg.job_id, files_total=0)
        jobs.finish(msg.job_id, state="failed", message=f"path {raw['path']!r} no longer exists")
        return
    files = list_files(target)
    jobs.start(msg.job_id, files_total=len(files))
    jobs.update(msg.job_id, scope=prefix + source_scope(target, root=root))
    for file_no, path in enumerate(files):
        source = prefix + source_name(path, root=root)
        dispatch.send(
            PARSE, ParseMsg(job_id=msg.job_id, file_no=file_no, path=str(path), source=source)
        )
    jobs.publish(msg.job_id)
    if not files and jobs.claim_finalize(msg.job_id):
        dispatch.send(FINALIZE, FinalizeMsg(job_id=msg.job_id))


# ---- parse --------------------------------------------------------------------------------


def parse(res: Resources, msg: ParseMsg, dispatch: Dispatcher) -> None:
    from shared.parsing import ParseError

    jobs = res.jobs
    job_id = msg.job_id
    if jobs.cancelled(job_id) or jobs.is_terminal(job_id) or jobs.was_parsed(job_id, msg.file_no):
        return
    raw = jobs.raw(job_id)
    corpus = raw["corpus"]
    jobs.update(job_id, current_file=msg.source)
    unchanged: int | None = None
    try:
        # Checked where it really is, and held open while read: see SourceFile.
        with SourceFile(Path(msg.path), root=Path(raw["root"])) as checked:
            content_hash = _content_hash(checked.real)
            unchanged = _unchanged_file(res, msg, corpus, content_hash)
            if unchanged is None:
                documents = _read(
                    res, checked.real, msg, passwords=jobs.passwords(job_id),
                    content_hash=content_hash,
                )
                checked.check_unchanged()
    except ParseError as exc:
        _file_done(res, msg, dispatch, outcome="failed", reason=str(exc), chunks=0)
        return
    except Exception as exc:  # a parser bug must fail one file, not the job
        log.exception("parsing %s failed", msg.path)
        reason = f"could not be read: {_safe_reason(exc, raw['root'], msg)}"
        _file_done(res, msg, dispatch, outcome="failed", reason=reason, chunks=0)
        return
    if unchanged is not None:
        _staging(res).mark_seen(job_id, msg.source)
        _file_done(res, msg, dispatch, outcome="unchanged", reason=None, chunks=unchanged)
        return

    signature = res.chunking_signature
    sources = [source for source, _, _ in documents]
    current = res.catalog.source_docs(corpus, sources)
    known = res.catalog.documents(corpus, {doc_id for _, _, doc_id in documents})
    _staging(res).mark_seen(job_id, *sources)

    staged_docs: list[StagedDocument] = []
    chunks: list[StagedChunk] = []
    unchanged_chunks = 0
    for (source, doc, doc_id), mapped in zip(documents, current, strict=True):
        entry = known.get(doc_id)
        reusable = entry is not None and entry.chunking == signature
        if reusable and mapped == doc_id:
            unchanged_chunks += entry.chunks if entry else 0
            continue
        start = len(chunks)
        if not reusable:
            for chunk in res.chunker.chunk(doc):
                chunks.append(
                    StagedChunk(
                        doc=len(staged_docs),
                        index=chunk.index,
                        page=chunk.page,
                        char_start=chunk.char_start,
                        char_end=chunk.char_end,
                        n_tokens=chunk.n_tokens,
                        text=chunk.text,
                        before=chunk.before,
                        after=chunk.after,
                    )
                )
        staged_docs.append(
            StagedDocument(
                doc_id=doc_id,
                source=source,
                title=doc.title,
                format=doc.format,
                external_id=doc.external_id,
                reuse=reusable,
                chunks=entry.chunks if reusable and entry else len(chunks) - start,
            )
        )

    if not staged_docs:
        _file_done(res, msg, dispatch, outcome="unchanged", reason=None, chunks=unchanged_chunks)
        return

    batch = res.settings.embedding.batch_size
    n_batches = math.ceil(len(chunks) / batch)
    _staging(res).put(
        job_id,
        msg.file_no,
        StagedFile(
            file=msg.source, corpus=corpus, docs=staged_docs, n_batches=n_batches, chunks=chunks
        ),
    )
    # Each chunk's vector embeds its document's title (cut to fit the model) and its text.
    dense_texts = [
        res.chunker.titled(staged_docs[c.doc].title, c.text, n_tokens=c.n_tokens) for c in chunks
    ]
    for b in range(n_batches):
        texts = dense_texts[b * batch : (b + 1) * batch]
        dispatch.send(
            EMBED, EmbedMsg(job_id=job_id, file_no=msg.file_no, batch_no=b, texts=texts)
        )
    if jobs.mark_parsed(job_id, msg.file_no):
        jobs.add(job_id, files_parsed=1, chunks_total=len(chunks))
        jobs.update(job_id, stage="embedding")
    if n_batches == 0:
        dispatch.send(INDEX, IndexMsg(job_id=job_id, file_no=msg.file_no))
    jobs.publish(job_id)


def _safe_reason(exc: Exception, root: str, msg: ParseMsg) -> str:
    """An unexpected error in words a client may see: no server path in it."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).replace(msg.path, msg.source).replace(root, "")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _content_hash(path: Path) -> str | None:
    """A single-document file's identity; None for JSONL (one per record) or unreadable files,
    which reading then reports."""
    if path.suffix.lower() == ".jsonl":
        return None
    try:
        return file_hash(path)
    except OSError:
        return None


def _unchanged_file(
    res: Resources, msg: ParseMsg, corpus: str, doc_id: str | None
) -> int | None:
    """The chunk count of a single-document file whose exact bytes (`doc_id`) the corpus
    already holds under this name and chunking; None when it must be read."""
    if doc_id is None or res.catalog.source_doc(corpus, msg.source) != doc_id:
        return None
    entry = res.catalog.document(corpus, doc_id)
    if entry is None or entry.chunking != res.chunking_signature:
        return None
    return entry.chunks


def _read(
    res: Resources, path: Path, msg: ParseMsg, *, passwords: list[str], content_hash: str | None
) -> list[tuple[str, ParsedDocument, str]]:
    """(source, document, doc_id) for each document the file at `path` holds."""
    from shared.parsing import FileTooLargeError, detect_format, iter_jsonl, parse_file_with_timeout

    limits = res.settings.limits
    max_bytes = int(limits.max_file_mb * 1024 * 1024)
    size = path.stat().st_size
    if size > max_bytes:
        raise FileTooLargeError(size_bytes=size, max_bytes=max_bytes)
    if detect_format(path) == "jsonl":
        out = []
        for doc in iter_jsonl(path):
            record = json.dumps([doc.external_id, doc.title, doc.pages[0].text], sort_keys=True)
            out.append((f"{msg.source}#{doc.external_id}", doc, text_hash(record)))
        return out
    doc = parse_file_with_timeout(
        path,
        timeout_s=limits.parse_timeout_s,
        passwords=passwords,
        max_pages=limits.max_pages,
        max_bytes=max_bytes,
    )
    return [(msg.source, doc, content_hash or file_hash(path))]


def _file_done(
    res: Resources,
    msg: ParseMsg | IndexMsg,
    dispatch: Dispatcher,
    *,
    outcome: str,
    reason: str | None,
    chunks: int,
    source: str | None = None,
) -> None:
    jobs = res.jobs
    file_label = source or getattr(msg, "source", "")
    new, last = jobs.record_file(
        msg.job_id,
        msg.file_no,
        {"file": file_label, "outcome": outcome, "reason": reason, "chunks": chunks},
    )
    if new:
        log.info("%s %s%s", file_label, outcome, f": {reason}" if reason else f" ({chunks} chunks)")
    if new and isinstance(msg, ParseMsg) and jobs.mark_parsed(msg.job_id, msg.file_no):
        jobs.add(msg.job_id, files_parsed=1)
    if new:
        jobs.publish(msg.job_id)
    if last:
        dispatch.send(FINALIZE, FinalizeMsg(job_id=msg.job_id))


# ---- embed --------------------------------------------------------------------------------


def embed(res: Resources, msg: EmbedMsg, dispatch: Dispatcher, *, worker: str) -> None:
    jobs = res.jobs
    job_id = msg.job_id
    if jobs.cancelled(job_id) or jobs.is_terminal(job_id):
        return
    staging = _staging(res)
    if not staging.has_batch(job_id, msg.file_no, msg.batch_no):
        outcome = res.embedding_cache.embed(msg.texts, res.embedder.encode)
        if staging.put_batch(job_id, msg.file_no, msg.batch_no, outcome.vectors):
            jobs.add(
                job_id,
                chunks_embedded=len(msg.texts),
                embeddings_computed=outcome.computed,
                embeddings_cached=outcome.cached,
            )
            jobs.count_worker_batch(job_id, worker)
            jobs.publish(job_id)
            record_embedded_chunks(computed=outcome.computed, cached=outcome.cached)
    n_batches = staging.n_batches(job_id, msg.file_no)
    if n_batches is None:
        return  # already indexed (a redelivered batch)
    if staging.batches_done(job_id, msg.file_no) >= n_batches:
        dispatch.send(INDEX, IndexMsg(job_id=job_id, file_no=msg.file_no))


# ---- index (the store's owner) --------------------------------------------------------------


def index(res: Resources, msg: IndexMsg, dispatch: Dispatcher) -> None:
    jobs = res.jobs
    job_id = msg.job_id
    staged = _staging(res).load(job_id, msg.file_no)
    if staged is None:
        return  # committed already
    chunks = staged.chunks
    corpus = staged.corpus
    vectors = _staging(res).vectors(
        job_id, msg.file_no, n_batches=staged.n_batches, n_chunks=len(chunks)
    )
    if vectors is None:
        return  # a batch is still missing: its embed task will send us again

    with res.catalog.lock(corpus):
        if jobs.cancelled(job_id) or jobs.is_terminal(job_id):
            _staging(res).drop(job_id, msg.file_no)
            return
        store = res.store
        store.ensure_corpus(corpus, dim=vectors.shape[1] if len(chunks) else res.embedder.dim)
        signature = res.chunking_signature
        # Points of a document chunked under other settings have other ids: drop them first.
        fresh = [d.doc_id for d in staged.docs if not d.reuse]
        rechunked = [
            doc_id
            for doc_id, entry in res.catalog.documents(corpus, fresh).items()
            if entry.chunking != signature
        ]
        if rechunked:
            store.delete_documents(corpus, rechunked)
        points = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            doc = staged.docs[chunk.doc]
            points.append(
                ChunkPoint(
                    id=point_id(
                        doc_id=doc.doc_id,
                        chunk_index=chunk.index,
                        chunking_signature=signature,
                    ),
                    dense=vector.tolist(),
                    sparse=res.bm25.encode_document(_lexical_text(doc.title, chunk)),
                    payload={
                        "corpus": corpus,
                        "doc_id": doc.doc_id,
                        "chunk_index": chunk.index,
                        "text": chunk.text,
                        "page": chunk.page,
                        "char_start": chunk.char_start,
                        "char_end": chunk.char_end,
                        "title": doc.title,
                        "source": doc.source,
                        "external_id": doc.external_id,
                    },
                )
            )
        for start in range(0, len(points), 256):
            store.upsert(corpus, points[start : start + 256])
        placements = {
            d.source: DocumentEntry(
                doc_id=d.doc_id,
                title=d.title,
                chunks=d.chunks,
                chunking=signature,
                format=d.format,
                external_id=d.external_id,
            )
            for d in staged.docs
        }
        result = res.catalog.commit(corpus, placements=placements)
        if result.orphaned:
            store.delete_documents(corpus, result.orphaned)
        jobs.add(job_id, chunks_indexed=len(points))
        _file_done(
            res,
            msg,
            dispatch,
            outcome="indexed",
            reason=None,
            chunks=sum(d.chunks for d in staged.docs),
            source=staged.file,
        )
    _staging(res).drop(job_id, msg.file_no)


def _lexical_text(title: str, chunk: StagedChunk) -> str:
    """What BM25 indexes for a chunk: its text with its lexical context (Chunk.lexical_text)
    and the document's title in front."""
    text = chunk.before + chunk.text + chunk.after
    return f"{title}\n{text}" if title else text


# ---- finalize ------------------------------------------------------------------------------


def finalize(res: Resources, msg: FinalizeMsg, dispatch: Dispatcher) -> None:
    jobs = res.jobs
    job_id = msg.job_id
    if jobs.is_terminal(job_id):
        return
    raw = jobs.raw(job_id)
    corpus = raw["corpus"]
    removed = 0
    if raw.get("sync") == "1" and not jobs.cancelled(job_id):
        scope = raw.get("scope", "")
        seen = _staging(res).seen(job_id)
        gone = [
            s for s in res.catalog.sources(corpus) if s.startswith(scope) and s not in seen
        ]
        if gone:
            with res.catalog.lock(corpus):
                result = res.catalog.commit(corpus, placements={}, removed_sources=gone)
                if result.orphaned:
                    res.store.delete_documents(corpus, result.orphaned)
            removed = len(gone)
    record = jobs.record(job_id)
    counts: dict[str, int] = {}
    for f in record["files"]:
        counts[f["outcome"]] = counts.get(f["outcome"], 0) + 1
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no files"
    if removed:
        summary += f", {removed} removed (sync)"
    release_upload(raw, record["files"], state="succeeded")  # before the end is announced
    jobs.finish(job_id, state="succeeded", message=summary)
    if record["chunks_indexed"] or removed:  # an all-unchanged job leaves the index as it was
        _optimize_later(res, corpus)


def _optimize_later(res: Resources, corpus: str) -> None:
    """Build the embedded store's HNSW index of a large corpus, in the background: the
    store's owner keeps serving and committing meanwhile (EdgeStore.optimize)."""
    optimize = getattr(res.store, "optimize", None)
    if optimize is None:
        return
    if res.store.count(corpus) < res.settings.qdrant.optimize_min_chunks:
        return

    def run() -> None:
        try:
            optimize(corpus)
        except Exception:  # noqa: BLE001 - a failed build leaves the exact scan in place
            log.exception("optimising corpus %s failed", corpus)

    threading.Thread(target=run, name=f"optimize-{corpus}", daemon=True).start()
