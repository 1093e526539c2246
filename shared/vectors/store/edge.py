"""The embedded vector store: one qdrant-edge shard (a directory) per corpus, in this process.

qdrant-edge's `EdgeShard` synchronises its own reads and writes and releases the GIL while it
works, so queries and upserts from several threads may overlap. What it does not protect is
its lifecycle: a query racing `close()` fails with "Shard is not initialized", and opening a
directory twice fails on the WAL lock. So data operations share a read-write lock and
`drop_corpus`/`close` take it exclusively; shards are opened lazily under a mutex.

Sparse search asks for IDF over the live points (see `_LIVE_IDF`) after a delete: the
default statistics still count deleted points until the shard is reopened (or optimised, which
reopens it), and asking for live ones costs ~0.5 ms a query at 20k chunks. Upserts never need
it: a point id names its content (shared/identity.py), so an overwrite changes no statistics.

Writes go to the shard's write-ahead log first, so they survive a crash without `close()`.
Edge never optimises in the background: new points sit in plain (brute-force) segments until
`optimize()` builds the HNSW index (M and ef_construct from settings; ef at search time).
`EdgeShard.optimize` holds the GIL for its whole run (tens of seconds per 10k points on 2
cores), which would freeze every thread of the owning process, so `optimize()` runs it in a
child process on a copy of the shard and swaps the result in (see its docstring).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from shared.identity import CORPUS_NAME
from shared.vectors.store.base import ChunkPoint, Fields, SparseVector, StoredHit, checked_corpus

log = logging.getLogger(__name__)

DENSE = "dense"
SPARSE = "bm25"
_CONFIG_FILE = "edge_config.json"  # written by qdrant-edge into every shard directory
# IDF over the points that match an (empty) corpus filter, i.e. the live ones. The default,
# shard-wide statistics come from posting lists that deletes do not shrink until the segment
# is rebuilt or reloaded, so after deleting documents they still count them (qdrant#6735).
_LIVE_IDF = qe.SearchParams(idf=qe.IdfParams(corpus=qe.Filter()))
# Qdrant's default: an HNSW segment is searched by brute force below 10 MB of vectors.
_FULL_SCAN_KB = 10_000
# Run by `optimize` in a child process, niced: index building is background work.
_OPTIMIZE_CHILD = """
import os, sys
import qdrant_edge as qe
os.nice(10)
shard = qe.EdgeShard.load(sys.argv[1])
changed = shard.optimize()
shard.flush()
shard.close()
print("changed" if changed else "unchanged")
"""


class _ReadWriteLock:
    """Many holders of `shared()` or one of `exclusive()`; a waiting writer bars new readers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _doc_filter(doc_ids: Sequence[str]) -> qe.Filter:
    match: qe.MatchValue | qe.MatchAny = (
        qe.MatchValue(doc_ids[0]) if len(doc_ids) == 1 else qe.MatchAny(list(doc_ids))
    )
    return qe.Filter(must=[qe.FieldCondition(key="doc_id", match=match)])


def _selector(fields: Fields) -> Any:
    if fields is None:
        return True
    return qe.PayloadSelector.Include(list(fields)) if fields else False


def _hits(points: list[qe.ScoredPoint]) -> list[StoredHit]:
    # Hybrid search reads two lists of 300: each attribute read crosses into the binding
    # (`id` builds a uuid.UUID), so each is read once.
    return [
        StoredHit(str(p.id), p.score, dict(payload) if (payload := p.payload) else {})
        for p in points
    ]


class EdgeStore:
    """`VectorStore` on qdrant-edge shards under `path/<corpus>/`. Thread-safe."""

    def __init__(
        self,
        path: Path,
        *,
        hnsw_m: int = 16,
        hnsw_ef_construct: int = 100,
        hnsw_ef: int = 256,
    ) -> None:
        self._path = Path(path)
        self._shards: dict[str, qe.EdgeShard] = {}
        self._lock = _ReadWriteLock()
        self._open_lock = threading.Lock()
        self._hnsw = qe.HnswIndexConfig(
            m=hnsw_m, ef_construct=hnsw_ef_construct, full_scan_threshold=_FULL_SCAN_KB
        )
        self._dense_params = qe.SearchParams(hnsw_ef=hnsw_ef)
        # Bumped by every change to a corpus, so `optimize` can tell whether its copy is stale.
        self._changes: dict[str, int] = {}
        self._optimizing: set[str] = set()
        # Corpora whose open shard has lost points: their default IDF counts the lost ones.
        self._stale_idf: set[str] = set()

    # -- shards ---------------------------------------------------------------------------

    def _dir(self, corpus: str) -> Path:
        return self._path / checked_corpus(corpus)

    def _shard(self, corpus: str) -> qe.EdgeShard | None:
        """The open shard of `corpus`, opening it on first use; None if there is none."""
        shard = self._shards.get(corpus)
        if shard is not None:
            return shard
        with self._open_lock:
            shard = self._shards.get(corpus)
            if shard is None and (self._dir(corpus) / _CONFIG_FILE).is_file():
                shard = self._load(corpus)
                self._shards[corpus] = shard
            return shard

    def _load(self, corpus: str) -> qe.EdgeShard:
        size = self._dense_size(corpus)
        # With the current HNSW settings, so the next `optimize` rebuilds an index built
        # with others; without a readable size, as the shard is.
        shard = qe.EdgeShard.load(
            str(self._dir(corpus)), None if size is None else self._config(size)
        )
        self._index_doc_id(shard)
        self._stale_idf.discard(corpus)  # loading counts the live points afresh
        return shard

    def _config(self, dim: int) -> qe.EdgeConfig:
        return qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=self._hnsw,
        )

    def _changed(self, corpus: str) -> None:
        self._changes[corpus] = self._changes.get(corpus, 0) + 1

    def _required(self, corpus: str) -> qe.EdgeShard:
        shard = self._shard(corpus)
        if shard is None:
            raise LookupError(f"corpus {corpus!r} does not exist: call ensure_corpus first")
        return shard

    @staticmethod
    def _index_doc_id(shard: qe.EdgeShard) -> None:
        # Facets (doc_ids) need a keyword index, and it keeps delete-by-document cheap.
        if "doc_id" not in shard.info().payload_schema:
            shard.update(
                qe.UpdateOperation.create_field_index("doc_id", qe.PayloadSchemaType.Keyword)
            )

    def _dense_size(self, corpus: str) -> int | None:
        try:
            config = json.loads((self._dir(corpus) / _CONFIG_FILE).read_text())
            return int(config["vectors"][DENSE]["size"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    # -- VectorStore ----------------------------------------------------------------------

    def ensure_corpus(self, corpus: str, *, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dense vector size must be positive, got {dim}")
        with self._lock.shared(), self._open_lock:
            if (self._dir(corpus) / _CONFIG_FILE).is_file():
                size = self._dense_size(corpus)
                if size is not None and size != dim:
                    raise ValueError(
                        f"corpus {corpus!r} holds {size}-d dense vectors, not {dim}-d: "
                        "drop it or use the embedding model it was built with"
                    )
                return
            self._path.mkdir(parents=True, exist_ok=True)
            shard = qe.EdgeShard.create(str(self._dir(corpus)), self._config(dim))
            self._changed(corpus)
            self._index_doc_id(shard)
            self._shards[corpus] = shard

    def upsert(self, corpus: str, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        edge_points = [
            qe.Point(
                id=p.id,
                vector=(
                    {
                        DENSE: list(p.dense),
                        SPARSE: qe.SparseVector(p.sparse.indices, p.sparse.values),
                    }
                    if p.sparse.indices
                    else {DENSE: list(p.dense)}  # a chunk of stop words only: no BM25 vector
                ),
                payload=p.payload,
            )
            for p in points
        ]
        with self._lock.shared():
            self._required(corpus).update(qe.UpdateOperation.upsert_points(edge_points))
            self._changed(corpus)

    def delete_documents(self, corpus: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        with self._lock.shared():
            shard = self._shard(corpus)
            if shard is not None:
                self._stale_idf.add(corpus)  # before any search can see the points gone
                shard.update(qe.UpdateOperation.delete_points_by_filter(_doc_filter(doc_ids)))
                self._changed(corpus)

    def search_dense(
        self, corpus: str, vector: Sequence[float], *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        query = qe.Query.Nearest(list(vector), using=DENSE)
        return self._search(corpus, query, limit=limit, params=self._dense_params, fields=fields)

    def search_sparse(
        self, corpus: str, vector: SparseVector, *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        if not vector.indices:
            return []
        query = qe.Query.Nearest(qe.SparseVector(vector.indices, vector.values), using=SPARSE)
        params = _LIVE_IDF if corpus in self._stale_idf else None
        return self._search(corpus, query, limit=limit, params=params, fields=fields)

    def _search(
        self,
        corpus: str,
        query: qe.Query,
        *,
        limit: int,
        params: qe.SearchParams | None = None,
        fields: Fields = None,
    ) -> list[StoredHit]:
        if limit < 1:
            return []
        request = qe.QueryRequest(
            limit=limit, query=query, with_payload=_selector(fields), params=params
        )
        with self._lock.shared():
            shard = self._shard(corpus)
            return [] if shard is None else _hits(shard.query(request))

    def payloads(
        self, corpus: str, ids: Sequence[str], *, fields: Fields = None
    ) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        with self._lock.shared():
            shard = self._shard(corpus)
            if shard is None:
                return {}
            records = shard.retrieve(list(ids), with_payload=_selector(fields), with_vector=False)
        return {str(r.id): dict(r.payload or {}) for r in records}

    def count(self, corpus: str, *, doc_id: str | None = None) -> int:
        request = qe.CountRequest(exact=True, filter=_doc_filter([doc_id]) if doc_id else None)
        with self._lock.shared():
            shard = self._shard(corpus)
            return 0 if shard is None else shard.count(request)

    def doc_ids(self, corpus: str) -> set[str]:
        with self._lock.shared():
            shard = self._shard(corpus)
            if shard is None:
                return set()
            total = shard.count(qe.CountRequest(exact=True))
            if total == 0:
                return set()
            facet = shard.facet(qe.FacetRequest(key="doc_id", limit=total, exact=True))
            # An exact facet still lists the values of deleted points, with count 0.
            return {str(hit.value) for hit in facet.hits if hit.count > 0}

    def corpora(self) -> list[str]:
        if not self._path.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self._path.iterdir()
            if CORPUS_NAME.fullmatch(entry.name) and (entry / _CONFIG_FILE).is_file()
        )

    def drop_corpus(self, corpus: str) -> None:
        directory = self._dir(corpus)
        with self._lock.exclusive():
            shard = self._shards.pop(corpus, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(directory, ignore_errors=True)
            self._stale_idf.discard(corpus)
            self._changed(corpus)

    def healthy(self) -> bool:
        try:
            with self._lock.shared():
                self._path.mkdir(parents=True, exist_ok=True)
                for shard in list(self._shards.values()):
                    shard.info()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            return False

    def close(self) -> None:
        """Flush and close every open shard. A later call opens them again."""
        with self._lock.exclusive():
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                shard.flush()
                shard.close()

    # -- beyond the protocol --------------------------------------------------------------

    def snapshot(self, dest: Path) -> None:
        """A consistent copy of every shard at `dest` (which must not exist). Data operations
        wait meanwhile: open shards are flushed and closed, copied, and reopen on next use."""
        with self._lock.exclusive():
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                shard.flush()
                shard.close()
            if self._path.is_dir():
                shutil.copytree(self._path, dest)
            else:
                dest.mkdir(parents=True)

    def optimize(self, corpus: str) -> bool:
        """Build the HNSW index and merge segments (blocking); True if the corpus changed.

        Edge has no background optimiser: call this after an ingest job commits. Until then
        dense search scans every vector (about 1 ms per 10k chunks, growing linearly).
        Segments under ~10 MB of vectors (~6.5k chunks of 384 floats) stay plain.

        The work happens in a child process on a copy of the shard, taken under the
        exclusive lock (reads and writes wait for the copy only); the optimised copy then
        replaces the shard, again under the exclusive lock. If the corpus changed meanwhile
        the copy is stale: it is dropped and False returned, so call again after the next
        commit. The owning process keeps serving throughout (an in-process
        `EdgeShard.optimize` would hold the GIL for the whole build). A call while another
        is optimising the same corpus returns False at once.
        """
        directory = self._dir(corpus)
        with self._open_lock:
            if corpus in self._optimizing:
                return False
            self._optimizing.add(corpus)
        try:
            return self._optimize(corpus, directory)
        finally:
            with self._open_lock:
                self._optimizing.discard(corpus)

    def _optimize(self, corpus: str, directory: Path) -> bool:
        work = self._path / f".optimize-{corpus}-{uuid.uuid4().hex[:8]}"
        started = time.perf_counter()
        try:
            with self._lock.exclusive():
                shard = self._shard(corpus)
                if shard is None:
                    return False
                shard.flush()
                seen = self._changes.get(corpus, 0)
                shutil.copytree(directory, work)
            copied = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", _OPTIMIZE_CHILD, str(work)],
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(
                    f"optimising corpus {corpus!r} failed: {proc.stderr.strip()[-2000:]}"
                )
            if proc.stdout.strip() != "changed":
                return False
            built = time.perf_counter()
            with self._lock.exclusive():
                if self._changes.get(corpus, 0) != seen or not directory.is_dir():
                    log.info("corpus %r changed while being optimised: copy dropped", corpus)
                    return False
                shard = self._shards.pop(corpus, None)
                if shard is not None:
                    shard.close()
                retired = self._path / f".retired-{corpus}-{uuid.uuid4().hex[:8]}"
                directory.rename(retired)
                try:
                    work.rename(directory)
                except OSError:
                    retired.rename(directory)  # keep the shard as it was
                    raise
                finally:
                    self._shards[corpus] = self._load(corpus)
            shutil.rmtree(retired, ignore_errors=True)
            log.info(
                "optimised corpus %r: copy %.2fs, build %.1fs, swap %.2fs",
                corpus,
                copied - started,
                built - copied,
                time.perf_counter() - built,
            )
            return True
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def info(self, corpus: str) -> dict[str, Any]:
        """Segment and point counts of a corpus's shard, for diagnostics."""
        with self._lock.shared():
            shard = self._required(corpus)
            info = shard.info()
            return {
                "segments": info.segments_count,
                "points": info.points_count,
                "indexed_vectors": info.indexed_vectors_count,
            }
