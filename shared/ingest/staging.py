"""Per-file staged data of an ingestion job, between parse and index: typed, in Redis.

parse stages a file (its documents and chunks) and the number of embedding batches; each
embed task adds one batch of vectors; index reads it all back and commits it, then drops it.
The sources a job has seen (for `--sync`) live here too. Writes are first-writer-wins, so a
redelivered task changes nothing twice.
"""

from __future__ import annotations

import json

import numpy as np
import redis
from pydantic import BaseModel

from shared.keys import Keys

STAGING_TTL_S = 7 * 86400  # a job that never finishes leaves nothing behind for long


class StagedChunk(BaseModel):
    doc: int  # index into StagedFile.docs
    index: int
    page: int | None
    char_start: int
    char_end: int
    n_tokens: int
    text: str
    before: str = ""  # the chunk's lexical context (Chunk.before/after): BM25 reads it too
    after: str = ""


class StagedDocument(BaseModel):
    doc_id: str
    source: str
    title: str
    format: str
    external_id: str | None
    reuse: bool  # already stored under this chunking: only its placement changes
    chunks: int


class StagedFile(BaseModel):
    file: str
    corpus: str
    docs: list[StagedDocument]
    n_batches: int
    chunks: list[StagedChunk] = []


class Staging:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._r = client
        self._k = keys

    # ---- the file -------------------------------------------------------------------------

    def put(self, job_id: str, file_no: int, staged: StagedFile) -> None:
        key = self._k.staged_file(job_id, file_no)
        meta = staged.model_dump_json(exclude={"chunks"})
        pipe = self._r.pipeline()
        pipe.hset(
            key,
            mapping={
                "meta": meta,
                "chunks": "[" + ",".join(c.model_dump_json() for c in staged.chunks) + "]",
            },
        )
        pipe.expire(key, STAGING_TTL_S)
        pipe.execute()

    def n_batches(self, job_id: str, file_no: int) -> int | None:
        """The file's batch count; None once it is committed (or never staged)."""
        raw = self._r.hget(self._k.staged_file(job_id, file_no), "meta")
        return None if raw is None else StagedFile.model_validate_json(raw).n_batches

    def load(self, job_id: str, file_no: int) -> StagedFile | None:
        meta, chunks = self._r.hmget(self._k.staged_file(job_id, file_no), ["meta", "chunks"])
        if meta is None:
            return None
        staged = StagedFile.model_validate_json(meta)
        staged.chunks = [StagedChunk.model_validate(c) for c in _json_list(chunks)]
        return staged

    def drop(self, job_id: str, file_no: int) -> None:
        self._r.delete(self._k.staged_file(job_id, file_no), self._k.staged_vectors(job_id, file_no))

    def drop_job(self, job_id: str) -> None:
        """Forget the embedded-but-uncommitted vectors of a job that will not commit them."""
        for key in self._r.scan_iter(match=self._k.staging_pattern(job_id), count=500):
            self._r.unlink(key)

    # ---- vectors, one hash field per batch --------------------------------------------------

    def has_batch(self, job_id: str, file_no: int, batch_no: int) -> bool:
        return bool(self._r.hexists(self._k.staged_vectors(job_id, file_no), str(batch_no)))

    def put_batch(self, job_id: str, file_no: int, batch_no: int, vectors: np.ndarray) -> bool:
        """Store a batch's vectors; False when a redelivery finds them stored already."""
        key = self._k.staged_vectors(job_id, file_no)
        if not self._r.hsetnx(key, str(batch_no), vectors.astype(np.float32).tobytes()):
            return False
        self._r.expire(key, STAGING_TTL_S)
        return True

    def batches_done(self, job_id: str, file_no: int) -> int:
        return int(self._r.hlen(self._k.staged_vectors(job_id, file_no)))

    def vectors(self, job_id: str, file_no: int, *, n_batches: int, n_chunks: int) -> np.ndarray | None:
        """All the file's vectors in chunk order; None while a batch is missing."""
        if n_batches == 0:
            return np.zeros((0, 0), dtype=np.float32)
        key = self._k.staged_vectors(job_id, file_no)
        raw = self._r.hmget(key, [str(b) for b in range(n_batches)])
        if any(r is None for r in raw):
            return None
        vectors = np.concatenate([np.frombuffer(r, dtype=np.float32) for r in raw])
        return vectors.reshape(n_chunks, -1)

    # ---- sources seen by the job (for --sync) -------------------------------------------

    def mark_seen(self, job_id: str, *sources: str) -> None:
        if sources:
            self._r.sadd(self._k.job_seen_sources(job_id), *sources)

    def seen(self, job_id: str) -> set[str]:
        return {s.decode() for s in self._r.smembers(self._k.job_seen_sources(job_id))}


def _json_list(raw: bytes | None) -> list[object]:
    return [] if raw is None else list(json.loads(raw))
