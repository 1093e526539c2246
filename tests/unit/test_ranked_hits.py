"""One query's ranking against a store: which lists it fetches, how deep, and its term count."""

from __future__ import annotations

import numpy as np

from shared.search.chunk_documents import ChunkDocuments
from shared.search.ranking import Fusion
from shared.search.retriever import ranked_hits
from shared.vectors.store import SparseVector, StoredHit
from shared.vectors.store.base import Fields


class ListStore:
    """Two fixed lists; records each search and its depth."""

    def __init__(self) -> None:
        self.searches: list[tuple[str, int]] = []

    def search_dense(
        self, corpus: str, vector: list[float], *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        self.searches.append(("dense", limit))
        return [_hit("a", 0.9, fields), _hit("b", 0.1, fields)]

    def search_sparse(
        self, corpus: str, vector: SparseVector, *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        self.searches.append(("sparse", limit))
        return [_hit("b", 9.0, fields), _hit("a", 1.0, fields)]

    def payloads(self, corpus: str, ids: list[str]) -> dict[str, dict]:
        self.searches.append(("payloads", len(ids)))
        return {i: PAYLOADS[i] for i in ids}


PAYLOADS = {"a": {"doc_id": "A", "text": "alpha"}, "b": {"doc_id": "B", "text": "beta"}}


def _hit(id_: str, score: float, fields: Fields) -> StoredHit:
    payload = PAYLOADS[id_] if fields is None else {k: PAYLOADS[id_][k] for k in fields}
    return StoredHit(id=id_, score=score, payload=payload)


def search(fusion: Fusion, *, mode: str, terms: int, top_k: int = 2) -> tuple[dict, ListStore]:
    store = ListStore()
    embedded: list[bool] = []

    def vector() -> np.ndarray:
        embedded.append(True)
        return np.array([1.0, 0.0])

    ranked = ranked_hits(
        store, "c", mode=mode, fusion=fusion, top_k=top_k, query_vector=vector,
        sparse_query=SparseVector(indices=list(range(terms)), values=[1.0] * terms),
    )
    assert bool(embedded) == (mode != "bm25")  # the query is embedded only when needed
    return {h.id: s for h, s in ranked}, store


def test_hybrid_fetches_both_lists_candidates_deep() -> None:
    _, store = search(Fusion(candidates=300), mode="hybrid", terms=6)
    assert store.searches == [("dense", 300), ("sparse", 300), ("payloads", 2)]
    _, store = search(Fusion(candidates=300), mode="dense", terms=6, top_k=7)
    assert store.searches == [("dense", 7)]


def test_candidate_lists_carry_the_ranking_fields_and_the_page_its_whole_payloads() -> None:
    store = ListStore()
    ranked = ranked_hits(
        store, "c", mode="hybrid", fusion=Fusion(candidates=300), top_k=1,
        query_vector=lambda: np.array([1.0, 0.0]),
        sparse_query=SparseVector(indices=[1, 2, 3, 4, 5, 6], values=[1.0] * 6),
    )
    assert [(h.id, h.payload) for h, _ in ranked] == [("a", PAYLOADS["a"])]
    assert store.searches[-1] == ("payloads", 1)


def test_a_query_without_bm25_terms_searches_dense_only() -> None:
    scores, store = search(Fusion(), mode="hybrid", terms=0)
    assert store.searches == [("dense", 300), ("payloads", 2)]
    assert list(scores) == ["a", "b"]


def test_the_query_term_count_picks_the_dense_weight() -> None:
    fusion = Fusion(dense_weight=0.5, short_query_terms=5, short_query_dense_weight=0.6)
    short, _ = search(fusion, mode="hybrid", terms=5)
    long, _ = search(fusion, mode="hybrid", terms=6)
    assert short == {"a": 0.6, "b": 0.4}
    assert long == {"a": 0.5, "b": 0.5}


class CountingStore(ListStore):
    """ListStore that answers `payloads(..., fields=...)` and records which ids it was asked."""

    def __init__(self, deleted: set[str] | None = None) -> None:
        super().__init__()
        self.asked: list[list[str]] = []
        self.deleted = deleted or set()

    def payloads(self, corpus: str, ids: list[str], *, fields: Fields = None) -> dict[str, dict]:
        self.asked.append(sorted(ids))
        return {
            i: PAYLOADS[i] if fields is None else {k: PAYLOADS[i][k] for k in fields}
            for i in ids if i not in self.deleted
        }


def test_remembered_documents_spare_the_candidates_payloads() -> None:
    """With ChunkDocuments, candidate lists come without payload; each chunk's document is
    asked of the store once per process, and the ranking is the same."""
    documents = ChunkDocuments()
    plain, _ = search(Fusion(candidates=300), mode="hybrid", terms=6)
    store = CountingStore()
    for _ in range(2):
        ranked = ranked_hits(
            store, "c", mode="hybrid", fusion=Fusion(candidates=300), top_k=2,
            query_vector=lambda: np.array([1.0, 0.0]),
            sparse_query=SparseVector(indices=list(range(6)), values=[1.0] * 6),
            documents=documents,
        )
        assert {h.id: s for h, s in ranked} == plain
        assert [(h.id, h.payload) for h, _ in ranked] == [("a", PAYLOADS["a"]), ("b", PAYLOADS["b"])]
    # the first query learnt both chunks' documents; afterwards only the page is fetched
    assert store.asked == [["a", "b"], ["a", "b"], ["a", "b"]]


def test_a_chunk_deleted_since_its_search_is_left_out() -> None:
    store = CountingStore(deleted={"b"})
    ranked = ranked_hits(
        store, "c", mode="hybrid", fusion=Fusion(candidates=300), top_k=2,
        query_vector=lambda: np.array([1.0, 0.0]),
        sparse_query=SparseVector(indices=list(range(6)), values=[1.0] * 6),
        documents=ChunkDocuments(),
    )
    assert [h.id for h, _ in ranked] == ["a"]
