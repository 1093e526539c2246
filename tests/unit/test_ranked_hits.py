"""One query's ranking against a store: the lists it fetches, and pseudo-relevance feedback."""

from __future__ import annotations

import numpy as np

from shared.search.ranking import Fusion, rocchio
from shared.search.retriever import ranked_hits
from shared.vectors.store import SparseVector, StoredHit

# Three chunks of three documents on a plane: the query sits nearest to "a", "b" is the
# document BM25 likes, "c" lies beyond "b" from the query.
VECTORS = {"a": np.array([1.0, 0.0]), "b": np.array([0.6, 0.8]), "c": np.array([0.0, 1.0])}
QUERY = np.array([0.9, 0.1]) / np.linalg.norm([0.9, 0.1])


class PlaneStore:
    """Dense search by dot product over VECTORS; sparse search a fixed BM25 list."""

    def __init__(self) -> None:
        self.dense_queries: list[list[float]] = []

    def search_dense(self, corpus: str, vector: list[float], *, limit: int) -> list[StoredHit]:
        self.dense_queries.append(vector)
        scored = sorted(((float(np.dot(v, vector)), k) for k, v in VECTORS.items()), reverse=True)
        return [StoredHit(id=k, score=s, payload={"doc_id": k}) for s, k in scored[:limit]]

    def search_sparse(self, corpus: str, vector: SparseVector, *, limit: int) -> list[StoredHit]:
        hits = [("b", 9.0), ("c", 3.0), ("a", 1.0)]
        return [StoredHit(id=k, score=s, payload={"doc_id": k}) for k, s in hits[:limit]]


def feedback(hits: list[StoredHit]) -> np.ndarray:
    return np.stack([VECTORS[h.id] for h in hits])


def search(fusion: Fusion, *, mode: str = "hybrid", top_k: int = 3) -> tuple[list[str], PlaneStore]:
    store = PlaneStore()
    ranked = ranked_hits(
        store, "c", mode=mode, fusion=fusion, top_k=top_k, query_vector=lambda: QUERY,
        sparse_query=SparseVector(indices=[1, 2], values=[1.0, 1.0]), feedback_vectors=feedback,
    )
    return [h.id for h, _ in ranked], store


def test_rocchio_moves_the_query_toward_the_feedback_and_keeps_unit_length() -> None:
    moved = rocchio(QUERY, np.stack([VECTORS["c"]]), weight=1.0)
    assert abs(float(np.linalg.norm(moved)) - 1.0) < 1e-6
    assert float(np.dot(moved, VECTORS["c"])) > float(np.dot(QUERY, VECTORS["c"]))


def test_without_feedback_one_dense_search() -> None:
    order, store = search(Fusion(dense_weight=0.5))
    assert len(store.dense_queries) == 1
    assert sorted(order) == ["a", "b", "c"]


def test_feedback_searches_again_from_the_moved_query_and_ranks_that_list() -> None:
    fusion = Fusion(dense_weight=0.5, feedback_chunks=2, feedback_weight=1.0)
    order, store = search(fusion, top_k=1)
    assert len(store.dense_queries) == 2
    # The first pass ranks b, then a: the query moves toward their mean, still with 2 chunks
    # of feedback although only one result was asked for.
    expected = rocchio(QUERY, np.stack([VECTORS["b"], VECTORS["a"]]), weight=1.0)
    assert np.allclose(store.dense_queries[1], expected)
    assert order == ["b"]


def test_feedback_is_for_hybrid_mode_only() -> None:
    fusion = Fusion(dense_weight=0.5, feedback_chunks=2, feedback_weight=1.0)
    for mode in ("dense", "bm25"):
        _, store = search(fusion, mode=mode)
        assert len(store.dense_queries) == (1 if mode == "dense" else 0)
