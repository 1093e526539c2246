"""Retrieval ideas beyond plain convex fusion, measured on SciFact train (`tune_scifact.py --ideas`).

Each idea is a small grid of settings over the same first-pass lists the service fetches (the
shipped BM25 encoder, EdgeStore, 300 candidates a mode, convex fusion by document). For each
one: nDCG@10 of every setting on all of train, and a 5-fold split of train: settings chosen on
four folds, scored on the fifth, so a gain that is only the choice fitting the queries shows
up as none. Ideas:

- dense_title: what each chunk's vector embeds, its text or its title (cut to fit) and text;
- document_value: how a document's chunks in one list score for it (best, best plus a share
  of the second, top-2 mean, sum);
- query_length: the dense weight of convex fusion by the query's BM25 term count;
- normalisation: z-scores instead of min-max before the convex fusion;
- dense_prf: Rocchio on the query vector from the first pass's top chunks, searched again;
- rm3: RM3 expansion of the BM25 query from the first pass's top chunks, searched again.

Then the ideas together, each choosing its settings on the training folds.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.search import ranking
from shared.search.evaluation import document_ranking, document_run
from shared.vectors.bm25 import Bm25Encoder, token_index
from shared.vectors.store.base import SparseVector, StoredHit

FOLDS = 5
Ranked = dict[str, list[StoredHit]]  # query id -> ranked chunks
PerQuery = dict[str, float]  # query id -> nDCG@10


def per_query_ndcg(qrels: Mapping[str, dict[str, int]], ranked: Ranked) -> PerQuery:
    """nDCG@10 of each judged query (ranx, as `shared.search.evaluation`), documents by best chunk."""
    from ranx import Qrels, Run, evaluate

    run = document_run({q: document_ranking(h.payload for h in ranked.get(q, [])) for q in qrels})
    complete = Run({q: dict(run.get(q, {})) for q in qrels})
    evaluate(Qrels(dict(qrels)), complete, "ndcg@10", make_comparable=True)
    return {q: float(v) for q, v in complete.scores["ndcg@10"].items()}


def folds_of(query_ids: Iterable[str], *, k: int = FOLDS, seed: int = 0) -> list[list[str]]:
    ids = sorted(query_ids)
    random.Random(seed).shuffle(ids)
    return [ids[i::k] for i in range(k)]


def _mean(scores: PerQuery, ids: Sequence[str]) -> float:
    return float(np.mean([scores[q] for q in ids]))


def cross_validate(
    grid: Mapping[str, PerQuery], baseline: PerQuery, folds: list[list[str]]
) -> dict[str, Any]:
    """Choose a setting on four folds, score it on the fifth; the held-out means and gains."""
    rows = []
    held_out: PerQuery = {}
    for i, test in enumerate(folds):
        train = [q for j, f in enumerate(folds) if j != i for q in f]
        chosen = max(grid, key=lambda name: _mean(grid[name], train))
        held_out.update({q: grid[chosen][q] for q in test})
        rows.append({
            "fold": i,
            "chosen": chosen,
            "train_ndcg": round(_mean(grid[chosen], train), 4),
            "test_ndcg": round(_mean(grid[chosen], test), 4),
            "test_baseline": round(_mean(baseline, test), 4),
            "test_gain": round(_mean(grid[chosen], test) - _mean(baseline, test), 4),
        })
    return held_out_summary(held_out, baseline, [q for f in folds for q in f], rows)


def held_out_summary(
    held_out: PerQuery, baseline: PerQuery, ids: Sequence[str], rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """Held-out nDCG@10 over `ids` beside the baseline's, and the folds' rows."""
    return {
        "held_out_ndcg": round(_mean(held_out, ids), 4),
        "baseline_ndcg": round(_mean(baseline, ids), 4),
        "held_out_gain": round(_mean(held_out, ids) - _mean(baseline, ids), 4),
        "folds_gaining": sum(1 for r in rows if r["test_gain"] > 0),
        "folds": rows,
    }


# ---- document values: how a document's chunks in one list score for it ---------------------


def second_share(weight: float) -> Callable[[list[float]], float]:
    """Best value plus `weight` times the second best (values come sorted, best first)."""
    if weight == 0:
        return max
    return lambda v: v[0] + weight * (v[1] if len(v) > 1 else 0.0)


def rocchio(query: np.ndarray, feedback: np.ndarray, *, weight: float) -> np.ndarray:
    """The query vector plus `weight` times the mean of the feedback chunks', at unit length."""
    moved = np.asarray(query, dtype=np.float32) + weight * feedback.mean(axis=0)
    return moved / np.linalg.norm(moved)


DOCUMENT_VALUES: dict[str, Callable[[list[float]], float]] = {
    "max": max,
    "max+0.1*second": second_share(0.1),
    "max+0.25*second": second_share(0.25),
    "max+0.5*second": second_share(0.5),
    "top2 mean": lambda v: (v[0] + (v[1] if len(v) > 1 else 0.0)) / 2,
    "sum": sum,
}


@dataclass
class IdeaBench:
    """First-pass lists of every query, and the pieces a second round needs."""

    chunks: Sequence[Any]  # tune_scifact.CorpusChunk, in store order
    vectors: np.ndarray  # what the store holds for each chunk (title + text)
    queries: dict[str, str]
    query_vectors: dict[str, np.ndarray]
    qrels: dict[str, dict[str, int]]
    dense: Ranked  # title + text vectors, 1000 deep
    dense_text: Ranked | None  # text-only vectors, 1000 deep (None: not measured)
    sparse: Ranked  # shipped BM25, 1000 deep
    store: Any  # the EdgeStore behind `sparse`, open
    encoder: Bm25Encoder
    fusion: ranking.Fusion
    top_k: int
    lexical_text: Callable[[Any], str]
    _position: dict[tuple[str, int], int] = field(default_factory=dict)
    _terms: dict[int, Counter[int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._position = {(c.external_id, c.index): i for i, c in enumerate(self.chunks)}

    @property
    def depth(self) -> int:
        return self.fusion.candidates

    def fuse(
        self,
        dense: Ranked,
        sparse: Ranked,
        *,
        weight: Callable[[str], float] | None = None,
        document_value: Callable[[list[float]], float] = max,
    ) -> Ranked:
        """Convex fusion by document of each query's two lists, `depth` deep."""
        c = self.depth
        return {
            q: [
                h
                for h, _ in ranking.convex_fusion(
                    dense[q][:c], sparse[q][:c],
                    dense_weight=self.fusion.dense_weight if weight is None else weight(q),
                    by_document=True, document_value=document_value,
                )[: self.top_k]
            ]
            for q in self.queries
        }

    def fuse_z(self, dense: Ranked, sparse: Ranked, *, weight: float) -> Ranked:
        """Convex fusion by document on z-scores (mean and deviation of each list's `depth`
        scores) instead of min-max; a document missing from a list gets that list's lowest."""
        c = self.depth
        out: Ranked = {}
        for q in self.queries:
            values: list[dict[str, float]] = []
            lowest: list[float] = []
            best: dict[str, StoredHit] = {}
            for hits in (dense[q][:c], sparse[q][:c]):
                scores = np.array([h.score for h in hits], dtype=float)
                mean, sd = (scores.mean(), scores.std() or 1.0) if len(scores) else (0.0, 1.0)
                per_doc: dict[str, float] = {}
                for h in hits:
                    doc = str(h.payload["external_id"])
                    per_doc.setdefault(doc, (h.score - mean) / sd)
                    best.setdefault(doc, h)
                values.append(per_doc)
                lowest.append(min(per_doc.values(), default=0.0))
            fused = {doc: weight * values[0].get(doc, lowest[0])
                     + (1 - weight) * values[1].get(doc, lowest[1]) for doc in best}
            out[q] = [best[doc] for doc in sorted(fused, key=lambda d: -fused[d])]
        return out

    def position(self, hit: StoredHit) -> int:
        return self._position[(str(hit.payload["external_id"]), int(hit.payload["chunk_index"]))]

    # ---- dense pseudo-relevance feedback (Rocchio) -----------------------------------------

    def rocchio_dense(self, first: Ranked, *, k: int, beta: float) -> Ranked:
        """Each query's vector plus `beta` times the mean of its top `k` chunks', searched."""
        out: Ranked = {}
        for q, hits in first.items():
            feedback = self.vectors[[self.position(h) for h in hits[:k]]]
            out[q] = self.search_dense(rocchio(self.query_vectors[q], feedback, weight=beta))
        return out

    def search_dense(self, vector: np.ndarray) -> list[StoredHit]:
        return self.store.search_dense("scifact", vector.tolist(), limit=self.depth)

    # ---- RM3 on BM25 ------------------------------------------------------------------------

    def terms(self, position: int) -> Counter[int]:
        if position not in self._terms:
            tokens = self.encoder.tokenize(self.lexical_text(self.chunks[position]))
            self._terms[position] = Counter(token_index(t) for t in tokens)
        return self._terms[position]

    def rm3_query(
        self, q: str, feedback: list[tuple[StoredHit, float]], *, terms: int, original: float
    ) -> SparseVector:
        """RM3: P(w|R) from the feedback chunks (term frequency over length, weighted by their
        first-pass scores), its top `terms`, mixed `original` : 1 - `original` with the query."""
        total = sum(score for _, score in feedback) or 1.0
        relevance: Counter[int] = Counter()
        for hit, score in feedback:
            counts = self.terms(self.position(hit))
            length = sum(counts.values()) or 1
            for term, tf in counts.items():
                relevance[term] += (score / total) * tf / length
        top = relevance.most_common(terms)
        mass = sum(w for _, w in top) or 1.0
        query = self.encoder.encode_query(self.queries[q])
        weights: dict[int, float] = {}
        for term in query.indices:
            weights[term] = original / len(query.indices)
        for term, w in top:
            weights[term] = weights.get(term, 0.0) + (1 - original) * w / mass
        indices = sorted(weights)
        return SparseVector(indices=indices, values=[weights[i] for i in indices])

    def rm3(
        self, first: Mapping[str, list[tuple[StoredHit, float]]], *, k: int, terms: int,
        original: float,
    ) -> Ranked:
        out: Ranked = {}
        for q, scored in first.items():
            feedback = [(h, max(s, 1e-9)) for h, s in scored[:k]]
            query = self.rm3_query(q, feedback, terms=terms, original=original)
            out[q] = self.store.search_sparse("scifact", query, limit=self.depth)
        return out


def _log(label: str, value: float, seconds: float) -> None:
    print(f"idea    {label:<60} ndcg@10 {value:.4f}  ({seconds:.0f}s)", file=sys.stderr,
          flush=True)


def run_ideas(bench: IdeaBench) -> dict[str, Any]:
    qrels = bench.qrels
    folds = folds_of(qrels)
    report: dict[str, Any] = {
        "folds": FOLDS,
        "fold_sizes": [len(f) for f in folds],
        "reference": "each idea against convex fusion at dense weight 0.5, 300 candidates, a "
        "document's best chunk, title + text vectors (dense_title against text vectors)",
    }

    def measure(label: str, ranked: Ranked) -> PerQuery:
        t = time.monotonic()
        scores = per_query_ndcg(qrels, ranked)
        _log(label, _mean(scores, list(qrels)), time.monotonic() - t)
        return scores

    def table(grid: Mapping[str, PerQuery]) -> dict[str, float]:
        return {name: round(_mean(s, list(qrels)), 4) for name, s in grid.items()}

    shipped_title = bench.fuse(bench.dense, bench.sparse)
    title = measure("hybrid, dense on title + chunk text", shipped_title)
    dense_title = measure("dense alone, title + chunk text", {q: h[: bench.top_k] for q, h in
                                                              bench.dense.items()})
    if bench.dense_text is not None:
        text = measure("hybrid, dense on chunk text (v1)", bench.fuse(bench.dense_text,
                                                                      bench.sparse))
        dense_text = measure("dense alone, chunk text", {q: h[: bench.top_k] for q, h in
                                                          bench.dense_text.items()})
        report["dense_title"] = {
            "hybrid": table({"text": text, "title + text": title}),
            "dense": table({"text": dense_text, "title + text": dense_title}),
            "cv": cross_validate({"title + text": title}, text, folds),
        }
    baseline = title  # every other idea is measured on top of the title vectors

    # Document values.
    grid = {name: measure(f"document value {name}", bench.fuse(bench.dense, bench.sparse,
                                                                document_value=value))
            for name, value in DOCUMENT_VALUES.items()}
    report["document_value"] = {"ndcg@10": table(grid), "cv": cross_validate(grid, baseline, folds)}
    document_grid = grid

    # Dense weight by query length: each query's nDCG at each weight, then threshold rules.
    n_terms = {q: len(bench.encoder.encode_query(t).indices) for q, t in bench.queries.items()}
    weights = [0.3, 0.4, 0.5, 0.6, 0.7]
    by_weight = {w: measure(f"dense weight {w}", bench.fuse(bench.dense, bench.sparse,
                                                            weight=lambda q, w=w: w))
                 for w in weights}
    grid = {}
    for limit in (4, 5, 6, 7, 8, 10):
        for short in weights:
            for long in weights:
                grid[f"terms<={limit}: w {short}, else {long}"] = {
                    q: by_weight[short if n_terms[q] <= limit else long][q] for q in qrels
                }
    lengths = np.array(list(n_terms.values()))
    report["query_length"] = {
        "bm25_terms": {"min": int(lengths.min()), "median": float(np.median(lengths)),
                       "max": int(lengths.max())},
        "uniform_weight": {str(w): round(_mean(s, list(qrels)), 4) for w, s in by_weight.items()},
        "best_rules": dict(sorted(table(grid).items(), key=lambda kv: -kv[1])[:5]),
        "cv": cross_validate({**grid, "uniform 0.5": baseline}, baseline, folds),
    }
    length_grid = grid

    # Score normalisation: z-scores instead of min-max (Bruch et al. compare both).
    grid = {f"z w={w}": measure(f"z-score fusion w={w}",
                                bench.fuse_z(bench.dense, bench.sparse, weight=w))
            for w in (0.4, 0.5, 0.6)}
    report["normalisation"] = {"ndcg@10": {"min-max w=0.5": round(_mean(baseline, list(qrels)),
                                                                    4), **table(grid)},
                               "cv": cross_validate({**grid, "min-max w=0.5": baseline},
                                                    baseline, folds)}

    # Dense Rocchio from the first pass's top chunks.
    grid = {}
    for k in (3, 5, 10):
        for beta in (0.25, 0.5, 1.0):
            second = bench.rocchio_dense(shipped_title, k=k, beta=beta)
            grid[f"k={k} beta={beta}"] = measure(f"dense prf k={k} beta={beta}",
                                                 bench.fuse(second, bench.sparse))
    report["dense_prf"] = {"ndcg@10": table(grid), "cv": cross_validate(grid, baseline, folds)}
    prf_grid = grid

    # RM3 on the BM25 query, feedback from the first pass (hybrid), fused with dense again.
    c = bench.depth
    scored_first = {
        q: ranking.convex_fusion(bench.dense[q][:c], bench.sparse[q][:c],
                                 dense_weight=bench.fusion.dense_weight)
        for q in bench.queries
    }
    grid = {}
    for k in (3, 10):
        for terms in (10, 25):
            for original in (0.5, 0.8):
                label = f"k={k} terms={terms} original={original}"
                expanded = bench.rm3(scored_first, k=k, terms=terms, original=original)
                grid[label] = measure(f"rm3 {label}", bench.fuse(bench.dense, expanded))
    rm3_report: dict[str, Any] = {"ndcg@10": table(grid), "cv": cross_validate(grid, baseline,
                                                                                 folds)}
    # Classic RM3 on BM25 alone: feedback from BM25's own top chunks.
    bm25 = measure("bm25 alone", {q: h[: bench.top_k] for q, h in bench.sparse.items()})
    best = max(grid, key=lambda name: _mean(grid[name], list(qrels)))
    k, terms, original = (float(part.split("=")[1]) for part in best.split())
    own = {q: [(h, h.score) for h in hits[:c]] for q, hits in bench.sparse.items()}
    bm25_rm3 = measure(f"bm25 alone + rm3 {best}",
                       {q: h[: bench.top_k] for q, h in
                        bench.rm3(own, k=int(k), terms=int(terms), original=original).items()})
    rm3_report["bm25_alone"] = {"bm25": round(_mean(bm25, list(qrels)), 4),
                                f"bm25 + rm3 {best}": round(_mean(bm25_rm3, list(qrels)), 4)}
    report["rm3"] = rm3_report
    rm3_grid = grid

    # Together: each idea picks its setting on the training folds; combinations are built
    # for the settings any fold picked (plus "off"), then scored on the held-out fold.
    report["together"] = together(bench, folds, baseline, document_grid, length_grid, prf_grid,
                                  rm3_grid, n_terms=n_terms, scored_first=scored_first,
                                  measure=measure)
    return report


def together(
    bench: IdeaBench, folds: list[list[str]], baseline: PerQuery, *grids: Mapping[str, PerQuery],
    n_terms: dict[str, int], scored_first: Mapping[str, Any],
    measure: Callable[[str, Ranked], PerQuery],
) -> dict[str, Any]:
    """Nested choice: per fold, each idea's best setting on the training folds (or off, when
    off is better there), combined, then the combination scored on the held-out fold."""
    document_grid, length_grid, prf_grid, rm3_grid = grids
    qids = list(bench.qrels)
    rows = []
    held_out: PerQuery = {}
    cache: dict[tuple[str, ...], PerQuery] = {}
    for i, test in enumerate(folds):
        train = [q for j, f in enumerate(folds) if j != i for q in f]

        def pick(grid: Mapping[str, PerQuery], off: str, train: list[str] = train) -> str:
            best = max(grid, key=lambda name: _mean(grid[name], train))
            return best if _mean(grid[best], train) > _mean(baseline, train) else off

        choice = (pick(document_grid, "max"), pick(length_grid, "off"), pick(prf_grid, "off"),
                  pick(rm3_grid, "off"))
        if choice not in cache:
            cache[choice] = measure(f"together {choice}", combined(
                bench, choice, n_terms=n_terms, scored_first=scored_first))
        scores = cache[choice]
        held_out.update({q: scores[q] for q in test})
        rows.append({"fold": i, "chosen": list(choice),
                     "test_ndcg": round(_mean(scores, test), 4),
                     "test_baseline": round(_mean(baseline, test), 4),
                     "test_gain": round(_mean(scores, test) - _mean(baseline, test), 4)})
    return {
        **held_out_summary(held_out, baseline, qids, rows),
        "combinations_on_all_train": {" | ".join(k): round(_mean(v, qids), 4)
                                      for k, v in cache.items()},
    }


def combined(
    bench: IdeaBench, choice: tuple[str, ...], *, n_terms: dict[str, int],
    scored_first: Mapping[str, Any],
) -> Ranked:
    """The ranking of one combination of idea settings (names as in the grids)."""
    document, length, prf, rm3 = choice
    dense, sparse = bench.dense, bench.sparse
    weight = None
    if length != "off":
        rule, rest = length.split(": w ")
        limit = int(rule.removeprefix("terms<="))
        short, long = (float(x) for x in rest.split(", else "))
        weight = lambda q: short if n_terms[q] <= limit else long
    value = DOCUMENT_VALUES[document]
    if rm3 != "off":
        k, terms, original = (part.split("=")[1] for part in rm3.split())
        sparse = bench.rm3(scored_first, k=int(k), terms=int(terms), original=float(original))
    if prf != "off":
        # Feedback from the first pass as the service ranks it: with the other ideas applied.
        k, beta = (part.split("=")[1] for part in prf.split())
        first_pass = bench.fuse(dense, bench.sparse, weight=weight, document_value=value)
        dense = bench.rocchio_dense(first_pass, k=int(k), beta=float(beta))
    return bench.fuse(dense, sparse, weight=weight, document_value=value)


def summary(report: Mapping[str, Any]) -> str:
    lines = []
    for idea in ("dense_title", "document_value", "query_length", "normalisation", "dense_prf",
                 "rm3", "together"):
        if idea not in report:
            continue
        cv = report[idea]["cv"] if idea != "together" else report[idea]
        lines.append(f"{idea:<15} cv held-out {cv['held_out_ndcg']:.4f} vs {cv['baseline_ndcg']:.4f}"
                     f" ({cv['held_out_gain']:+.4f}, {cv['folds_gaining']}/{FOLDS} folds gain)")
    return "\n".join(lines)
