"""Rank fusion of the BM25 and dense result lists."""

from __future__ import annotations

from collections.abc import Sequence

from shared.store import StoredHit


def reciprocal_rank_fusion(
    ranked_lists: Sequence[Sequence[StoredHit]], *, k: int = 60
) -> list[tuple[StoredHit, float]]:
    scores: dict[str, float] = {}
    hits: dict[str, StoredHit] = {}
    for ranked in ranked_lists:
        for rank, hit in enumerate(ranked):
            scores[hit.id] = scores.get(hit.id, 0.0) + 1.0 / (k + rank + 1)
            hits.setdefault(hit.id, hit)
    return sorted(((hits[i], s) for i, s in scores.items()), key=lambda hs: -hs[1])


def convex_fusion(
    dense: Sequence[StoredHit], sparse: Sequence[StoredHit], *, dense_weight: float
) -> list[tuple[StoredHit, float]]:
    """Min-max normalise each list, then weight: (Bruch et al., TOIS 2023)."""
    scores: dict[str, float] = {}
    hits: dict[str, StoredHit] = {}
    for ranked, weight in ((dense, dense_weight), (sparse, 1.0 - dense_weight)):
        if not ranked:
            continue
        top = max(h.score for h in ranked)
        bottom = min(h.score for h in ranked)
        span = (top - bottom) or 1.0
        for hit in ranked:
            scores[hit.id] = scores.get(hit.id, 0.0) + weight * (hit.score - bottom) / span
            hits.setdefault(hit.id, hit)
    return sorted(((hits[i], s) for i, s in scores.items()), key=lambda hs: -hs[1])
