"""Ranking, pure: how the BM25 and dense lists become one ranked list, and the result rows.

The retriever and `bench/tune_scifact.py` both rank through `rank`, so the benchmark scores
exactly what `/search` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from shared.vectors.store import StoredHit

MODES = ("hybrid", "dense", "bm25")


@dataclass(frozen=True, slots=True)
class Fusion:
    """How hybrid mode fuses its two lists (RAG_RETRIEVAL_* settings)."""

    kind: str = "convex"  # "convex" or "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.5
    candidates: int = 300
    by_document: bool = True  # convex only: each document's best chunk scores for it
    short_query_terms: int = 0  # convex: queries of at most this many BM25 terms ...
    short_query_dense_weight: float = 0.5  # ... fuse with this dense weight

    def depth(self, mode: str, top_k: int) -> int:
        """How many hits to fetch from each list for a query of `mode`."""
        return max(top_k, self.candidates) if mode == "hybrid" else top_k

    def dense_weight_for(self, query_terms: int | None) -> float:
        """The convex weight of the dense list for a query of `query_terms` BM25 terms."""
        if query_terms is not None and query_terms <= self.short_query_terms:
            return self.short_query_dense_weight
        return self.dense_weight


def rank(
    mode: str,
    dense: Sequence[StoredHit],
    sparse: Sequence[StoredHit],
    *,
    fusion: Fusion,
    top_k: int,
    query_terms: int | None = None,
) -> list[tuple[StoredHit, float]]:
    """The top `top_k` (hit, score) of a query, given the lists fetched to `fusion.depth`;
    `query_terms` is its number of distinct BM25 terms (for `Fusion.dense_weight_for`)."""
    if mode == "dense":
        ranked = [(h, h.score) for h in dense]
    elif mode == "bm25":
        ranked = [(h, h.score) for h in sparse]
    elif fusion.kind == "convex":
        ranked = convex_fusion(
            dense,
            sparse,
            dense_weight=fusion.dense_weight_for(query_terms),
            by_document=fusion.by_document,
        )
    else:
        ranked = reciprocal_rank_fusion([dense, sparse], k=fusion.rrf_k)
    return ranked[:top_k]


def result_row(hit: StoredHit, score: float) -> dict[str, Any]:
    """One search result as the API returns it."""
    p = hit.payload
    return {
        "chunk_id": hit.id,
        "doc_id": p.get("doc_id"),
        "external_id": p.get("external_id"),
        "source": p.get("source"),
        "title": p.get("title"),
        "page": p.get("page"),
        "char_start": p.get("char_start"),
        "char_end": p.get("char_end"),
        "text": p.get("text"),
        "score": round(float(score), 6),
    }


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
    dense: Sequence[StoredHit],
    sparse: Sequence[StoredHit],
    *,
    dense_weight: float,
    by_document: bool = True,
    document_value: Callable[[list[float]], float] = max,
) -> list[tuple[StoredHit, float]]:
    """Min-max normalise each list, then weight (Bruch et al., TOIS 2023).

    With `by_document`, the best chunk of each document (payload `doc_id`) is scored with the
    document's best normalised score from each list: a paper whose title-bearing first chunk
    matches the words and whose second chunk matches the meaning ranks on both. Its other
    chunks keep their own scores, which never exceed that one, so results stay chunks and a
    document ranks where its best chunk does. On SciFact train: nDCG@10 0.733 against 0.730
    chunk by chunk (bench/tune_scifact.py). `document_value` turns a document's values in one
    list (best first) into its value there: the best (the default) beat the sum, the top-2
    mean and the best plus a share of the second (bench/scifact_ideas.py).
    """
    weights = (dense_weight, 1.0 - dense_weight)
    scores: dict[str, float] = {}
    hits: dict[str, StoredHit] = {}
    document_of: dict[str, str] = {}  # chunk -> its document
    in_list: dict[str, tuple[list[float], list[float]]] = {}  # document -> values per list
    # A hybrid query fuses two lists of 300: each hit reads each dict once.
    for position, (ranked, weight) in enumerate(zip((dense, sparse), weights, strict=True)):
        if not ranked:
            continue
        list_scores = [h.score for h in ranked]
        bottom = min(list_scores)
        span = (max(list_scores) - bottom) or 1.0  # min-max normalisation
        for hit in ranked:
            value = (hit.score - bottom) / span
            chunk_id = hit.id
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * value
            document = document_of.get(chunk_id)
            if document is None:
                hits[chunk_id] = hit
                document = document_of[chunk_id] = _document(hit)
            if by_document:
                values = in_list.get(document)
                if values is None:
                    values = in_list[document] = ([], [])
                values[position].append(value)
    if by_document:
        best_chunk: dict[str, str] = {}  # document -> its chunk with the highest fused score
        for chunk_id, fused in scores.items():
            document = document_of[chunk_id]
            best = best_chunk.get(document)
            if best is None or fused > scores[best]:
                best_chunk[document] = chunk_id
        for document, chunk_id in best_chunk.items():
            in_dense, in_sparse = in_list[document]
            scores[chunk_id] = weights[0] * (
                _value_of(in_dense, document_value) if in_dense else 0.0
            ) + weights[1] * (_value_of(in_sparse, document_value) if in_sparse else 0.0)
    # Best first; ties keep their order of first appearance (sorting is stable).
    return sorted(((hits[i], s) for i, s in scores.items()), key=itemgetter(1), reverse=True)


def _value_of(values: list[float], document_value: Callable[[list[float]], float]) -> float:
    """A document's value in one list from its chunks' values there (in list order)."""
    if document_value is max:
        return max(values)  # the default: no need to sort
    return document_value(sorted(values, reverse=True))


def _document(hit: StoredHit) -> str:
    """The document a chunk belongs to; a hit without one stands alone."""
    doc_id = hit.payload.get("doc_id")
    return hit.id if doc_id is None else str(doc_id)
