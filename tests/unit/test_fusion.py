from __future__ import annotations

from shared.search.ranking import (
    Fusion,
    convex_fusion,
    rank,
    reciprocal_rank_fusion,
)
from shared.vectors.store import StoredHit


def hits(*pairs: tuple[str, float]) -> list[StoredHit]:
    return [StoredHit(id=i, score=s, payload={}) for i, s in pairs]


def test_rrf_rewards_agreement_between_lists() -> None:
    dense = hits(("a", 0.9), ("b", 0.8), ("c", 0.7))
    sparse = hits(("c", 12.0), ("a", 10.0), ("d", 1.0))
    fused = reciprocal_rank_fusion([dense, sparse], k=60)
    order = [h.id for h, _ in fused]
    assert order[:2] == ["a", "c"]
    assert set(order) == {"a", "b", "c", "d"}
    a_score = dict((h.id, s) for h, s in fused)["a"]
    assert abs(a_score - (1 / 61 + 1 / 62)) < 1e-12


def test_convex_fusion_normalises_each_list() -> None:
    dense = hits(("a", 0.9), ("b", 0.5))
    sparse = hits(("b", 30.0), ("c", 10.0))
    fused = dict((h.id, s) for h, s in convex_fusion(dense, sparse, dense_weight=0.25))
    assert fused == {"a": 0.25, "b": 0.75, "c": 0.0}


def test_fusion_with_an_empty_list_keeps_the_other_order() -> None:
    dense = hits(("a", 0.9), ("b", 0.5))
    assert [h.id for h, _ in convex_fusion(dense, [], dense_weight=0.5)] == ["a", "b"]
    assert [h.id for h, _ in reciprocal_rank_fusion([dense, []])] == ["a", "b"]


def doc_hits(*triples: tuple[str, str, float]) -> list[StoredHit]:
    return [StoredHit(id=i, score=s, payload={"doc_id": d}) for i, d, s in triples]


def test_convex_fusion_credits_a_documents_best_chunk_with_its_best_of_each_list() -> None:
    # Paper A: its title chunk a0 leads BM25, its second chunk a1 leads dense.
    dense = doc_hits(("a1", "A", 0.9), ("b0", "B", 0.8), ("a0", "A", 0.5))
    sparse = doc_hits(("a0", "A", 20.0), ("b0", "B", 15.0), ("a1", "A", 10.0))
    by_chunk = dict((h.id, s) for h, s in convex_fusion(dense, sparse, dense_weight=0.5,
                                                         by_document=False))
    assert by_chunk == {"a1": 0.5, "b0": 0.625, "a0": 0.5}
    fused = convex_fusion(dense, sparse, dense_weight=0.5)
    # a1 (A's best chunk, first of the tie) scores 0.5 * 1 + 0.5 * 1; a0 keeps its own 0.5.
    assert [(h.id, s) for h, s in fused] == [("a1", 1.0), ("b0", 0.625), ("a0", 0.5)]


def test_convex_fusion_by_document_never_ranks_another_chunk_above_the_best_one() -> None:
    dense = doc_hits(("a0", "A", 0.9), ("a1", "A", 0.7), ("b0", "B", 0.1))
    sparse = doc_hits(("a1", "A", 9.0), ("b0", "B", 5.0), ("a0", "A", 1.0))
    fused = convex_fusion(dense, sparse, dense_weight=0.3)
    scores = dict((h.id, s) for h, s in fused)
    assert [h.id for h, _ in fused][0] in {"a0", "a1"}
    assert max(scores["a0"], scores["a1"]) == 0.3 * 1.0 + 0.7 * 1.0
    assert min(scores["a0"], scores["a1"]) < 1.0


def test_hits_without_a_document_fuse_chunk_by_chunk() -> None:
    dense = [StoredHit(id="x", score=0.9, payload={}), StoredHit(id="y", score=0.1, payload={})]
    sparse = [StoredHit(id="y", score=3.0, payload={}), StoredHit(id="x", score=1.0, payload={})]
    assert convex_fusion(dense, sparse, dense_weight=0.5) == convex_fusion(
        dense, sparse, dense_weight=0.5, by_document=False
    )


def test_a_documents_value_in_a_list_can_count_more_than_its_best_chunk() -> None:
    # B's best chunk is a little below A's in both lists, but B has a strong second chunk.
    dense = doc_hits(("a0", "A", 1.0), ("b0", "B", 0.95), ("b1", "B", 0.9), ("z", "Z", 0.0))
    sparse = doc_hits(("a0", "A", 10.0), ("b0", "B", 9.5), ("b1", "B", 9.0), ("z", "Z", 0.0))
    alone = convex_fusion(dense, sparse, dense_weight=0.5)
    assert alone[0][0].id == "a0"
    summed = convex_fusion(dense, sparse, dense_weight=0.5, document_value=sum)
    scores = {h.id: s for h, s in summed}
    assert summed[0][0].id == "b0"
    assert abs(scores["b0"] - (0.95 + 0.9)) < 1e-9
    assert scores["a0"] == 1.0  # one chunk: its value alone


def test_short_queries_fuse_with_their_own_dense_weight() -> None:
    fusion = Fusion(dense_weight=0.5, short_query_terms=4, short_query_dense_weight=0.3)
    assert fusion.dense_weight_for(3) == fusion.dense_weight_for(4) == 0.3
    assert fusion.dense_weight_for(5) == 0.5
    assert fusion.dense_weight_for(None) == 0.5
    dense = hits(("a", 1.0), ("b", 0.0))
    sparse = hits(("b", 9.0), ("a", 0.0))
    short = {h.id: s for h, s in rank("hybrid", dense, sparse, fusion=fusion, top_k=2,
                                       query_terms=2)}
    long = {h.id: s for h, s in rank("hybrid", dense, sparse, fusion=fusion, top_k=2,
                                      query_terms=9)}
    assert short == {"a": 0.3, "b": 0.7}
    assert long == {"a": 0.5, "b": 0.5}
