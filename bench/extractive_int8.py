"""Extractive answers with candidate sentences ranked by the exact model or its int8
quantization (RAG_EXTRACTIVE_INT8): the answers' sources, and the time to embed the sentences.

Run: `python -m bench.extractive_int8 [--quick]`. Writes bench/results/extractive_int8.json.

On a deployment with SciFact ingested (--quick: its first 600 documents), for every SciFact
train claim with a judged paper in the corpus: the service's hybrid top 5 (POST /search),
then the extractive answer built in this process from those hits as the service builds it
(`shared.search.extractive`, the same tokenizer), once with sentence vectors from the exact
ONNX model and once from its int8 quantization; the question's vector is exact in both, as in
the service. Per variant: the share of answers whose first citation is a judged paper, the
share of answer sentences from judged papers, the share of answers identical to the exact
model's, and the p50 time to embed one answer's candidate sentences (all cores).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from typing import Any

import numpy as np

from bench.common import (
    QUICK_SCIFACT_DOCS,
    SCIFACT_DIR,
    Deployment,
    log,
    scifact_deployment,
    write_result,
)
from bench.embed_backends import CACHE_DIR

NAME = "extractive_int8"
TOP_K = 5


def _judged_claims(corpus_ids: set[str]) -> list[tuple[str, set[str]]]:
    """SciFact train claims with a judged paper among `corpus_ids`, and those papers."""
    from shared.search.evaluation import load_beir

    dataset = load_beir(SCIFACT_DIR, split="train")
    claims = []
    for qid, text in dataset.queries.items():
        judged = {doc for doc, score in dataset.qrels[qid].items() if score > 0} & corpus_ids
        if judged:
            claims.append((text, judged))
    return claims


def run_on(dep: Deployment, corpus_info: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    from shared.search import extractive
    from shared.vectors.bm25 import Bm25Encoder
    from shared.vectors.onnx_embedder import OnnxEmbedder

    corpus = corpus_info["corpus"]
    docs = corpus_info["docs"]
    with (dep.corpus_root / "scifact" / "corpus.jsonl").open() as lines:
        corpus_ids = {json.loads(line)["_id"] for line in lines}
    claims = _judged_claims(corpus_ids)
    log(f"extractive_int8: {len(claims)} SciFact train claims with a judged paper in {docs} docs")
    threads = os.cpu_count() or 1
    models = CACHE_DIR / "models"
    embedders = {
        "exact": OnnxEmbedder(cache_dir=models, threads=threads),
        "int8": OnnxEmbedder(cache_dir=models, threads=threads, quantized=True),
    }
    bm25 = Bm25Encoder()
    answers: dict[str, list[tuple[bool, float, str]]] = {name: [] for name in embedders}
    timings: dict[str, list[float]] = {name: [] for name in embedders}
    for text, judged in claims:
        hits = dep.client.post(
            "/search", json={"query": text, "corpus": corpus, "top_k": TOP_K}
        ).json()["results"]
        question = embedders["exact"].encode([text])[0]
        for name, embedder in embedders.items():

            def similarity(
                sentences: list[str], e: Any = embedder, key: str = name, q: Any = question
            ) -> np.ndarray:
                t0 = time.perf_counter()
                vectors = e.encode(sentences)
                timings[key].append((time.perf_counter() - t0) * 1000)
                return np.asarray(vectors @ q)

            answer = extractive.extractive_answer(
                hits=hits, queries=[text], tokenize=bm25.tokenize, similarity=similarity
            )
            cited = [int(n) for n in re.findall(r"\[(\d+)\]", answer or "")]
            relevant = [hits[n - 1]["source"].rsplit("#", 1)[-1] in judged for n in cited]
            answers[name].append(
                (bool(relevant and relevant[0]), float(np.mean(relevant)) if relevant else 0.0,
                 answer or "")
            )
    variants = {}
    for name, rows in answers.items():
        variants[name] = {
            "first_citation_judged": round(float(np.mean([r[0] for r in rows])), 4),
            "sentences_from_judged": round(float(np.mean([r[1] for r in rows])), 4),
            "identical_to_exact": round(
                float(np.mean([a[2] == b[2] for a, b in zip(rows, answers["exact"], strict=True)])),
                4,
            ),
            "embed_sentences_p50_ms": round(float(np.median(timings[name])), 2),
        }
    return {
        "corpus": corpus_info,
        "claims": len(claims),
        "top_k": TOP_K,
        "max_candidates": extractive.MAX_CANDIDATES,
        "threads": threads,
        "variants": variants,
        "int8_speedup": round(
            variants["exact"]["embed_sentences_p50_ms"] / variants["int8"]["embed_sentences_p50_ms"], 2
        ),
        "quick": quick,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_SCIFACT_DOCS} docs")
    args = parser.parse_args(argv)
    with scifact_deployment(docs=QUICK_SCIFACT_DOCS if args.quick else None) as (dep, info):
        report = run_on(dep, info, quick=args.quick)
    write_result(NAME, report)
    print(json.dumps(report["variants"], indent=2))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
