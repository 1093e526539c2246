"""Dense and BM25 lists from different chunk sizes: an idea for issue 14's quality target.

Run: `python -m bench.dense_granularity [--dense-tokens 128] [--threads N]`. Writes
bench/results/dense_granularity.json.

SciFact train, in process, as bench/tune_scifact.py scores the service: the shipped BM25
encoder, EdgeStore lists 300 deep, the shipped convex fusion by document, nDCG@10 by ranx.
Two first passes: the shipped chunks (RAG_CHUNK_MAX_TOKENS=200, overlap 32) for both lists,
and the same BM25 list beside a dense list over chunks of `--dense-tokens` (overlap 32; title
and text embedded, as the service does). Fusion is by document, so the two chunkings meet
at their documents. Nothing is tuned: the shipped weights for both. Reported on all of train
and on each of 5 folds (bench/scifact_ideas.py's split), with the chunk counts, which set the
embedding cost. The vectors come from tune_scifact's cache (torch, batches of 32); the first
run embeds ~20k texts for 128 tokens (~18 minutes on one thread here).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import write_result
from bench.scifact_ideas import folds_of, per_query_ndcg
from bench.tune_scifact import DEFAULT_DATA, Bench, corpus_chunks, embeddings, shipped

NAME = "dense_granularity"
SHIPPED_TOKENS, OVERLAP = 200, 32


def run(*, dense_tokens: int = 128, threads: int = 1) -> dict[str, Any]:
    from shared.search import ranking
    from shared.search.evaluation import DEFAULT_TOP_K, load_beir

    started = time.monotonic()
    dataset = load_beir(DEFAULT_DATA, split="train")
    query_vectors = embeddings(list(dataset.queries.values()), label="queries-train",
                               threads=threads)
    lexical, fusion = shipped()
    policy = fusion.policy()
    encoder = lexical.encoder()
    terms = {q: len(encoder.encode_query(t).indices) for q, t in dataset.queries.items()}
    common: dict[str, Any] = {"queries": dataset.queries, "query_vectors": query_vectors,
                              "depth": policy.candidates}
    lists: dict[int, tuple[int, dict, dict]] = {}
    with tempfile.TemporaryDirectory(prefix="dense-granularity-") as workdir:
        for tokens in (SHIPPED_TOKENS, dense_tokens):
            chunks = corpus_chunks(DEFAULT_DATA, max_tokens=tokens, overlap_tokens=OVERLAP)
            vectors = embeddings([c.dense for c in chunks], label=f"chunks{tokens}-title",
                                 threads=threads)
            bench = Bench(chunks=chunks, vectors=vectors, workdir=Path(workdir) / str(tokens),
                          **common)
            lists[tokens] = (len(chunks), bench.dense(), bench.sparse(lexical))
            bench.close()
    n_shipped, dense_shipped, sparse = lists[SHIPPED_TOKENS]
    n_small, dense_small, _ = lists[dense_tokens]

    def ranked(dense: dict) -> dict[str, list]:
        return {
            q: [h for h, _ in ranking.rank("hybrid", dense[q], sparse[q], fusion=policy,
                                            top_k=DEFAULT_TOP_K, query_terms=terms[q])]
            for q in dataset.queries
        }

    variants = {
        "shipped": per_query_ndcg(dataset.qrels, ranked(dense_shipped)),
        f"dense_{dense_tokens}": per_query_ndcg(dataset.qrels, ranked(dense_small)),
    }
    folds = folds_of(dataset.qrels)
    report = {
        "split": "train", "queries": len(dataset.qrels), "top_k": DEFAULT_TOP_K,
        "dense_tokens": dense_tokens,
        "fusion": fusion.label(),
        "chunks": {"bm25": n_shipped, "dense_shipped": n_shipped, "dense_small": n_small},
        "ndcg@10": {k: round(float(np.mean(list(v.values()))), 4) for k, v in variants.items()},
        "folds": [
            {k: round(float(np.mean([v[q] for q in fold])), 4) for k, v in variants.items()}
            for fold in folds
        ],
        "seconds": round(time.monotonic() - started, 1),
    }
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    report = run(dense_tokens=args.dense_tokens, threads=args.threads)
    write_result(NAME, report)
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
