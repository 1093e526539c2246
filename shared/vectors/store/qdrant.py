"""The vector store on qdrant-client: a Qdrant server, or the client's local mode (path/memory).

One collection per corpus, named `<prefix><corpus>`, with a "dense" cosine vector and a "bm25"
sparse vector whose IDF the server applies. Local mode is pure Python and not thread-safe, so
calls are serialised there; a server client is used from any thread without a lock.
Sparse search on a server asks for IDF over live points, falling back to the server's global
statistics if it is too old to know the parameter.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

from shared.vectors.store.base import (
    ChunkPoint,
    Fields,
    SparseVector,
    StoredHit,
    checked_corpus,
)

DENSE = "dense"
SPARSE = "bm25"
_UPSERT_BATCH = 256  # points per request: well under the server's 32 MiB JSON limit

# IDF over the points matching an empty corpus filter: every live point.
_LIVE_IDF = models.SearchParams(idf=models.IdfCorpusParams(corpus=models.Filter()))

T = TypeVar("T")


def _doc_filter(doc_ids: Sequence[str]) -> models.Filter:
    match: models.MatchValue | models.MatchAny = (
        models.MatchValue(value=doc_ids[0])
        if len(doc_ids) == 1
        else models.MatchAny(any=list(doc_ids))
    )
    return models.Filter(must=[models.FieldCondition(key="doc_id", match=match)])


def _hits(points: list[models.ScoredPoint]) -> list[StoredHit]:
    return [StoredHit(id=str(p.id), score=p.score, payload=dict(p.payload or {})) for p in points]


class QdrantStore:
    """`VectorStore` on a `QdrantClient`; the caller owns the client's settings."""

    def __init__(self, client: QdrantClient, *, collection_prefix: str = "rag_") -> None:
        self._client = client
        self._prefix = collection_prefix
        options = client.init_options
        self._local = options.get("path") is not None or options.get("location") == ":memory:"
        self._lock = threading.RLock()
        # Local mode keeps exact IDF statistics; a server's count deleted points until its
        # optimiser rebuilds the segment (qdrant#6735), unless asked for IDF over live points.
        self._live_idf = not self._local

    @contextmanager
    def _serial(self) -> Iterator[None]:
        if self._local:
            with self._lock:
                yield
        else:
            yield

    def _name(self, corpus: str) -> str:
        return self._prefix + checked_corpus(corpus)

    def _or_missing(self, name: str, call: Callable[[], T], missing: T) -> T:
        """`call()`, or `missing` if it failed because the collection does not exist.

        Cheaper than asking first: the happy path makes one request, not two.
        """
        try:
            return call()
        except (UnexpectedResponse, ValueError):
            if not self._client.collection_exists(name):
                return missing
            raise

    # -- VectorStore ----------------------------------------------------------------------

    def ensure_corpus(self, corpus: str, *, dim: int) -> None:
        if dim < 1:
            raise ValueError(f"dense vector size must be positive, got {dim}")
        name = self._name(corpus)
        with self._serial():
            if not self._client.collection_exists(name):
                try:
                    self._client.create_collection(
                        name,
                        vectors_config={
                            DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)
                        },
                        sparse_vectors_config={
                            SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                        },
                    )
                except UnexpectedResponse as exc:
                    if exc.status_code != 409:  # 409: another process created it first
                        raise
            info = self._client.get_collection(name)
            vectors = info.config.params.vectors
            size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
            if size != dim:
                raise ValueError(
                    f"collection {name!r} holds {size}-d dense vectors, not {dim}-d: "
                    "drop the corpus or use the embedding model it was built with"
                )
            # Local mode ignores payload indexes (and warns); a server uses it for
            # delete-by-document, count-by-document and the doc_id facet.
            if not self._local and "doc_id" not in (info.payload_schema or {}):
                self._client.create_payload_index(
                    name, field_name="doc_id", field_schema=models.PayloadSchemaType.KEYWORD
                )

    def upsert(self, corpus: str, points: Sequence[ChunkPoint]) -> None:
        if not points:
            return
        name = self._name(corpus)
        structs = [
            models.PointStruct(
                id=p.id,
                vector=(
                    {
                        DENSE: list(p.dense),
                        SPARSE: models.SparseVector(
                            indices=p.sparse.indices, values=p.sparse.values
                        ),
                    }
                    if p.sparse.indices
                    else {DENSE: list(p.dense)}  # a chunk of stop words only: no BM25 vector
                ),
                payload=p.payload,
            )
            for p in points
        ]
        with self._serial():
            if not self._client.collection_exists(name):
                raise LookupError(f"corpus {corpus!r} does not exist: call ensure_corpus first")
            for start in range(0, len(structs), _UPSERT_BATCH):
                self._client.upsert(name, points=structs[start : start + _UPSERT_BATCH], wait=True)

    def delete_documents(self, corpus: str, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        name = self._name(corpus)
        selector = models.FilterSelector(filter=_doc_filter(doc_ids))
        with self._serial():
            self._or_missing(
                name, lambda: self._client.delete(name, points_selector=selector, wait=True), None
            )

    def search_dense(
        self, corpus: str, vector: Sequence[float], *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        return self._search(corpus, list(vector), limit=limit, using=DENSE, fields=fields)

    def search_sparse(
        self, corpus: str, vector: SparseVector, *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        if not vector.indices:
            return []
        query = models.SparseVector(indices=vector.indices, values=vector.values)
        if not self._live_idf:
            return self._search(corpus, query, limit=limit, using=SPARSE, fields=fields)
        try:
            return self._search(
                corpus, query, limit=limit, using=SPARSE, params=_LIVE_IDF, fields=fields
            )
        except UnexpectedResponse as exc:
            if exc.status_code not in (400, 422):
                raise
            # A server older than IDF corpora refuses the parameter: use its global IDF.
            self._live_idf = False
            return self._search(corpus, query, limit=limit, using=SPARSE, fields=fields)

    def _search(
        self,
        corpus: str,
        query: list[float] | models.SparseVector,
        *,
        limit: int,
        using: str,
        params: models.SearchParams | None = None,
        fields: Fields = None,
    ) -> list[StoredHit]:
        if limit < 1:
            return []
        name = self._name(corpus)

        def run() -> list[StoredHit]:
            response = self._client.query_points(
                name,
                query=query,
                using=using,
                limit=limit,
                with_payload=_selector(fields),
                search_params=params,
            )
            return _hits(response.points)

        with self._serial():
            return self._or_missing(name, run, [])

    def payloads(
        self, corpus: str, ids: Sequence[str], *, fields: Fields = None
    ) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        name = self._name(corpus)

        def run() -> list[models.Record]:
            return self._client.retrieve(name, ids=list(ids), with_payload=_selector(fields))

        with self._serial():
            records = self._or_missing(name, run, [])
        return {str(r.id): dict(r.payload or {}) for r in records}

    def count(self, corpus: str, *, doc_id: str | None = None) -> int:
        name = self._name(corpus)
        count_filter = _doc_filter([doc_id]) if doc_id else None

        def run() -> int:
            return self._client.count(name, count_filter=count_filter, exact=True).count

        with self._serial():
            return self._or_missing(name, run, 0)

    def doc_ids(self, corpus: str) -> set[str]:
        name = self._name(corpus)

        def run() -> set[str]:
            total = self._client.count(name, exact=True).count
            if total == 0:
                return set()
            facet = self._client.facet(name, key="doc_id", limit=total, exact=True)
            return {str(hit.value) for hit in facet.hits if hit.count > 0}

        with self._serial():
            return self._or_missing(name, run, set())

    def corpora(self) -> list[str]:
        with self._serial():
            names = [c.name for c in self._client.get_collections().collections]
        return sorted(n[len(self._prefix) :] for n in names if n.startswith(self._prefix))

    def drop_corpus(self, corpus: str) -> None:
        name = self._name(corpus)
        with self._serial():
            self._client.delete_collection(name)

    def healthy(self) -> bool:
        try:
            with self._serial():
                self._client.get_collections()
            return True
        except Exception:  # noqa: BLE001 - any failure means "not usable"
            return False

    def close(self) -> None:
        with self._serial():
            self._client.close()


def _selector(fields: Fields) -> bool | list[str]:
    if fields is None:
        return True
    return list(fields) if fields else False
