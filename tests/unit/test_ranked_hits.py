"""One query's ranking against a store: which lists it fetches, how deep, with what payload,
and its term count."""

from __future__ import annotations

import numpy as np

from shared.search.chunk_documents import ChunkDocuments
from shared.search.ranking import Fusion
from shared.search.retriever import ranked_hits
from shared.vectors.store import SparseVector, StoredHit
from shared.vectors.store.base import Fields


class ListStore:
    """Two fixed lists; records each search (its depth and the payload fields asked) and each
    payload lookup (how many ids, which fields). `deleted` chunks are gone by lookup time."""

    def __init__(self, deleted: set[str] | None = None) -> None:
        self.searches: list[tuple] = []
        self.asked: list[list[str]] = []
        self.deleted = deleted or set()

    def search_dense(
        self, corpus: str, vector: list[float], *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        self.searches.append(("dense", limit, fields))
        return [_hit("a", 0.9, fields), _hit("b", 0.1, fields)]

    def search_sparse(
        self, corpus: str, vector: SparseVector, *, limit: int, fields: Fields = None
    ) -> list[StoredHit]:
        self.searches.append(("sparse", limit, fields))
        return [_hit("b", 9.0, fields), _hit("a", 1.0, fields)]

    def payloads(self, corpus: str, ids: list[str], *, fields: Fields = None) -> dict[str, dict]:
        self.searches.append(("payloads", len(ids), fields))
        self.asked.append(sorted(ids))
        return {i: _hit(i, 0.0, fields).payload for i in ids if i not in self.deleted}


PAYLOADS = {"a": {"doc_id": "A", "text": "alpha"}, "b": {"doc_id": "B", "text": "beta"}}
DOC_ID = ("doc_id",)


def _hit(id_: str, score: float, fields: Fields) -> StoredHit:
    payload = dict(PAYLOADS[id_]) if fields is None else {k: PAYLOADS[id_][k] for k in fields}
    return StoredHit(id=id_, score=score, payload=payload)


def _ranked(store: ListStore, documents: ChunkDocuments, *, top_k: int = 2) -> list:
    return ranked_hits(
        store, "c", mode="hybrid", fusion=Fusion(candidates=300), top_k=top_k,
        query_vector=lambda: np.array([1.0, 0.0]),
        sparse_query=SparseVector(indices=list(range(6)), values=[1.0] * 6),
        documents=documents,
    )


def search(fusion: Fusion, *, mode: str, terms: int, top_k: int = 2) -> tuple[dict, ListStore]:
    store = ListStore()
    embedded: list[bool] = []

    def vector() -> np.ndarray:
        embedded.append(True)
        return np.array([1.0, 0.0])

    ranked = ranked_hits(
        store, "c", mode=mode, fusion=fusion, top_k=top_k, query_vector=vector,
        sparse_query=SparseVector(indices=list(range(terms)), values=[1.0] * terms),
        documents=ChunkDocuments(),
    )
    assert bool(embedded) == (mode != "bm25")  # the query is embedded only when needed
    return {h.id: s for h, s in ranked}, store


def test_hybrid_fetches_both_lists_candidates_deep() -> None:
    _, store = search(Fusion(candidates=300), mode="hybrid", terms=6)
    assert store.searches == [
        ("dense", 300, ()), ("sparse", 300, ()), ("payloads", 2, DOC_ID), ("payloads", 2, None)
    ]
    _, store = search(Fusion(candidates=300), mode="dense", terms=6, top_k=7)
    assert store.searches == [("dense", 7, None)]


def test_candidate_lists_carry_no_payload_and_the_page_its_whole_payloads() -> None:
    store = ListStore()
    ranked = _ranked(store, ChunkDocuments(), top_k=1)
    assert [(h.id, h.payload) for h, _ in ranked] == [("a", PAYLOADS["a"])]
    assert store.searches[-1] == ("payloads", 1, None)


def test_a_query_without_bm25_terms_searches_dense_only() -> None:
    scores, store = search(Fusion(), mode="hybrid", terms=0)
    assert store.searches == [("dense", 300, ()), ("payloads", 2, DOC_ID), ("payloads", 2, None)]
    assert list(scores) == ["a", "b"]


def test_the_query_term_count_picks_the_dense_weight() -> None:
    fusion = Fusion(dense_weight=0.5, short_query_terms=5, short_query_dense_weight=0.6)
    short, _ = search(fusion, mode="hybrid", terms=5)
    long, _ = search(fusion, mode="hybrid", terms=6)
    assert short == {"a": 0.6, "b": 0.4}
    assert long == {"a": 0.5, "b": 0.5}


def test_each_chunks_document_is_asked_of_the_store_once() -> None:
    """Both lists' documents in one lookup; a later query asks nothing it has seen, and ranks
    the same."""
    documents = ChunkDocuments()
    store = ListStore()
    first = _ranked(store, documents)
    again = _ranked(store, documents)
    assert [(h.id, s) for h, s in first] == [(h.id, s) for h, s in again] == [
        ("a", 0.5), ("b", 0.5)
    ]
    assert [(h.id, h.payload) for h, _ in again] == [("a", PAYLOADS["a"]), ("b", PAYLOADS["b"])]
    # the first query's documents, its page, then the second query's page alone
    assert store.asked == [["a", "b"], ["a", "b"], ["a", "b"]]
    assert [c for c in store.searches if c[0] == "payloads"] == [
        ("payloads", 2, DOC_ID), ("payloads", 2, None), ("payloads", 2, None)
    ]


def test_a_chunk_deleted_since_its_search_is_left_out() -> None:
    assert [h.id for h, _ in _ranked(ListStore(deleted={"b"}), ChunkDocuments())] == ["a"]
