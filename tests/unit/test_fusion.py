from __future__ import annotations

from shared.fusion import convex_fusion, reciprocal_rank_fusion
from shared.store import StoredHit


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
