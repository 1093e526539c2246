"""SciFact train through what a user would pick instead of this service, beside it: nDCG@10 of
all 809 judged train queries and the latency of each query, in one process, one thread each.

Run: `python -m bench.baselines [--quick] [--latency-queries N]`; part of `make bench`
(bench/run.py). Writes bench/results/baselines.json. Needs the `bench` extra
(`pip install -e '.[bench]'`: haystack-ai and sentence-transformers-haystack).

The three see the same chunks: corpus.jsonl chunked by the service's `Chunker` (RAG_CHUNK_*
defaults, 20,041 chunks of 5,183 abstracts). Each indexes a chunk's BM25 text as title +
newline + chunk text; ours, as the service does, adds the chunk's lexical context (the page's
words around it, RAG_CHUNK_LEXICAL_CONTEXT_TOKENS): that is part of what is compared. (With the
200-token chunks shipped before, Haystack scored 0.7105 and the seed 0.7101; with today's
128-token chunks, 0.7143 and 0.7117: smaller chunks do not handicap them.) All use the same
chunk vector: all-MiniLM-L6-v2 of title (cut to fit) + text, as the ingest stage embeds it,
computed once by the service's `Embedder` (cached under the temp dir by bench/tune_scifact.py)
and handed to the baselines precomputed, since computing them again with each library's
document embedder would only repeat the same model on the same texts for ten minutes. Queries
are embedded per query, inside each system's timed path, by the same model.

- ours: the service's retrieval offline: a real EdgeStore with every chunk, queried through
  `shared.search.retriever.ranked_hits` with the shipped settings (what `/search` runs, without
  HTTP and the cache), 300 chunks a query (what `rag eval` asks for).
- haystack: haystack-ai's in-memory hybrid pipeline: SentenceTransformersTextEmbedder (the same
  model) -> InMemoryEmbeddingRetriever and InMemoryBM25Retriever (the store's defaults: BM25L,
  k1 1.5, b 0.75, dot product) -> DocumentJoiner, 100 chunks from each (see HAYSTACK_TOP_K;
  Recall@100 is therefore not comparable, nDCG@10 and MRR@10 are). The pipeline joins by
  reciprocal rank fusion (its hybrid join mode without a ranker model); the other join modes
  are scored on the same two retriever lists, captured from the same runs.
- seed: the seed project's retrieval (rag_papers `hybrid_search`), reimplemented from its
  description: rank-bm25's BM25Okapi over lowercased words without punctuation longer than 2
  characters, cosine similarity over all chunk vectors (scikit-learn), the top 2 x top_k of
  each, each list min-max normalised, 0.5 x BM25 + 0.5 x dense, results with a score above 0
  (keyed by chunk, where the seed keyed by chunk text and so merged identical chunks). top_k
  300, as ours; the seed asked for 12 (its `top_k_first`), also scored.

Chunk results become documents the same way for all three: a document ranks where its best
(first-listed) chunk does (`shared.search.evaluation.document_ranking`); scored by ranx.
Latency is the wall time of one query, query embedding included, measured with the three
systems interleaved query by query (so load on the machine falls on all three alike), over the
first `--latency-queries` train queries (default all; the first 5 are warm-up).
"""

from __future__ import annotations

import argparse
import os
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")  # no network from a benchmark

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import tune_scifact
from bench.common import SCIFACT_DIR, loadavg, log, percentiles_ms, write_result

NAME = "baselines"
TOP_K = 300  # chunks a query, as `rag eval` and bench/tune_scifact.py ask for
# Haystack's retrievers copy every document they return (Document.to_dict, embedding included)
# and its pipeline deep-copies them again: 100 a list (its default is 10) keeps its queries near
# 0.4 s (p50 on 2 shared cores) while nDCG@10, decided by the first ranks of each list, is not
# affected by the depth.
HAYSTACK_TOP_K = 100
SEED_TOP_K = 12  # the seed's `Stage4Config.top_k_first`
WARMUP = 5
QUICK_QUERIES = 100

Hits = list[tuple[str, int]]  # (external_id, chunk index), best first


# ---- ours -----------------------------------------------------------------------------------


class Ours:
    """The service's retrieval over a real EdgeStore holding the same chunks and vectors."""

    name = "ours"

    def __init__(self, chunks: Sequence[Any], vectors: np.ndarray, embed: Callable, workdir: Path):
        lexical, fusion = tune_scifact.shipped()
        self.encoder = lexical.encoder()
        self.fusion = fusion.policy()
        self.store = tune_scifact.edge_store(workdir / "edge", chunks, vectors, lexical)
        self.embed = embed
        from shared.search.chunk_documents import ChunkDocuments

        self.documents = ChunkDocuments()  # as the retriever's

    def search(self, query: str) -> Hits:
        from shared.search.retriever import ranked_hits

        ranked = ranked_hits(
            self.store, "scifact", mode="hybrid", fusion=self.fusion, top_k=TOP_K,
            query_vector=lambda: self.embed([query])[0],
            sparse_query=self.encoder.encode_query(query),
            documents=self.documents,
        )
        return [(h.payload["external_id"], h.payload["chunk_index"]) for h, _ in ranked]

    def close(self) -> None:
        self.store.close()


# ---- Haystack -------------------------------------------------------------------------------


class Haystack:
    """haystack-ai's in-memory hybrid retrieval pipeline."""

    name = "haystack"
    JOIN_MODES = ("reciprocal_rank_fusion", "concatenate", "merge",
                  "distribution_based_rank_fusion")

    def __init__(self, chunks: Sequence[Any], vectors: np.ndarray, model_path: str):
        from haystack import Document, Pipeline
        from haystack.components.joiners import DocumentJoiner
        from haystack.components.retrievers.in_memory import (
            InMemoryBM25Retriever,
            InMemoryEmbeddingRetriever,
        )
        from haystack.document_stores.in_memory import InMemoryDocumentStore
        from haystack_integrations.components.embedders.sentence_transformers import (
            SentenceTransformersTextEmbedder,
        )

        store = InMemoryDocumentStore()
        store.write_documents([
            Document(id=f"{c.external_id}/{c.index}", content=f"{c.title}\n{c.text}",
                     embedding=vector.tolist(),
                     meta={"external_id": c.external_id, "chunk_index": c.index})
            for c, vector in zip(chunks, vectors, strict=True)
        ])
        pipeline = Pipeline()
        pipeline.add_component("text_embedder", SentenceTransformersTextEmbedder(
            model=model_path, progress_bar=False, local_files_only=True))
        k = HAYSTACK_TOP_K
        pipeline.add_component("embedding_retriever", InMemoryEmbeddingRetriever(store, top_k=k))
        pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(store, top_k=k))
        pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion",
                                                        top_k=k))
        pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
        pipeline.connect("bm25_retriever", "joiner")
        pipeline.connect("embedding_retriever", "joiner")
        pipeline.warm_up()
        self.pipeline = pipeline
        self.joiners = {mode: DocumentJoiner(join_mode=mode, top_k=HAYSTACK_TOP_K)
                        for mode in self.JOIN_MODES}
        self.lists: dict[str, tuple[list[Any], list[Any]]] = {}  # query -> retriever outputs

    def search(self, query: str) -> Hits:
        out = self.pipeline.run(
            {"text_embedder": {"text": query}, "bm25_retriever": {"query": query}},
            include_outputs_from={"bm25_retriever", "embedding_retriever"},
        )
        # Kept for the other join modes, without the embeddings (memory: 809 queries).
        self.lists[query] = tuple(  # type: ignore[assignment]
            [replace(d, embedding=None) for d in out[name]["documents"]]
            for name in ("bm25_retriever", "embedding_retriever")
        )
        return _doc_hits(out["joiner"]["documents"])

    def joined(self, query: str, mode: str) -> Hits:
        """The same two retriever lists of `query`, joined by another join mode."""
        bm25, dense = self.lists[query]
        return _doc_hits(self.joiners[mode].run(documents=[bm25, dense])["documents"])

    def close(self) -> None:
        pass


def _doc_hits(documents: Sequence[Any]) -> Hits:
    return [(d.meta["external_id"], d.meta["chunk_index"]) for d in documents]


# ---- the seed -------------------------------------------------------------------------------


_PUNCTUATION = str.maketrans("", "", string.punctuation)


def seed_tokens(text: str) -> list[str]:
    """The seed's BM25 preprocessing: lowercase, punctuation removed, words of 3+ characters."""
    return [t for t in text.lower().translate(_PUNCTUATION).split() if len(t) > 2]


class Seed:
    """The seed's hybrid search: rank-bm25 and cosine similarity in process, min-max, 0.5/0.5."""

    name = "seed"

    def __init__(self, chunks: Sequence[Any], vectors: np.ndarray, embed: Callable):
        from rank_bm25 import BM25Okapi

        self.keys = [(c.external_id, c.index) for c in chunks]
        self.bm25 = BM25Okapi([seed_tokens(f"{c.title}\n{c.text}") or ["empty"] for c in chunks])
        self.vectors = vectors
        self.embed = embed
        self.at_seed_top_k: dict[str, Hits] = {}
        self._last: tuple[str, np.ndarray, np.ndarray] = ("", np.zeros(0), np.zeros(0))

    def search(self, query: str, top_k: int = TOP_K) -> Hits:
        from sklearn.metrics.pairwise import cosine_similarity

        tokens = seed_tokens(query)
        lexical = self.bm25.get_scores(tokens) if tokens else np.zeros(len(self.keys))
        vector = self.embed([query])[0]
        dense = cosine_similarity(vector.reshape(1, -1), self.vectors)[0]
        self._last = (query, lexical, dense)
        return self.fuse(lexical, dense, top_k=top_k)

    def keep_seed_depth(self) -> None:
        """The last query's results at the seed's own top_k (untimed), from the same scores."""
        query, lexical, dense = self._last
        self.at_seed_top_k[query] = self.fuse(lexical, dense, top_k=SEED_TOP_K)

    def fuse(self, lexical: np.ndarray, dense: np.ndarray, *, top_k: int) -> Hits:
        def top(scores: np.ndarray) -> dict[int, float]:
            best = scores.argsort()[-2 * top_k:][::-1]
            kept = {int(i): float(scores[i]) for i in best if scores[i] > 0}
            if not kept:
                return {}
            low, high = min(kept.values()), max(kept.values())
            if high == low:
                return dict.fromkeys(kept, 1.0)
            return {i: (s - low) / (high - low) for i, s in kept.items()}

        bm25, cosine = top(lexical), top(dense)
        combined = {i: 0.5 * bm25.get(i, 0.0) + 0.5 * cosine.get(i, 0.0)
                    for i in bm25.keys() | cosine.keys()}
        ranked = sorted(combined.items(), key=lambda kv: -kv[1])[:top_k]
        return [self.keys[i] for i, score in ranked if score > 0]

    def close(self) -> None:
        pass


# ---- the run --------------------------------------------------------------------------------


def _scores(qrels: dict[str, dict[str, int]], hits: dict[str, Hits]) -> dict[str, float]:
    from shared.search.evaluation import document_ranking, document_run, evaluate_runs

    run = document_run({
        q: document_ranking({"external_id": doc} for doc, _ in h) for q, h in hits.items()
    })
    return {k: round(v, 4) for k, v in evaluate_runs(qrels, {"run": run})["run"].items()}


def run(*, quick: bool = False, latency_queries: int | None = None,
        data: Path = SCIFACT_DIR) -> dict[str, Any]:
    import torch

    from shared.search.evaluation import load_beir
    from shared.settings import ChunkingSettings
    from shared.vectors.embedding import Embedder, default_model_path

    started = time.monotonic()
    chunking = ChunkingSettings()
    chunks = tune_scifact.corpus_chunks(data, max_tokens=chunking.max_tokens,
                                        overlap_tokens=chunking.overlap_tokens,
                                        context_tokens=chunking.lexical_context_tokens)
    # Embedded once (every core; cached for later runs), then one thread for the queries.
    vectors = tune_scifact.embeddings([c.dense for c in chunks],
                                      label=f"chunks{chunking.max_tokens}-title",
                                      threads=os.cpu_count() or 1)
    torch.set_num_threads(1)
    dataset = load_beir(data, split="train")
    queries = dict(list(dataset.queries.items())[:QUICK_QUERIES] if quick
                   else dataset.queries.items())
    qrels = {q: dataset.qrels[q] for q in queries}
    embedder = Embedder(threads=1)
    log(f"baselines: {len(chunks)} chunks, {len(queries)} queries; building the three indexes")

    build: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rag-baselines-") as tmp:
        t = time.monotonic()
        ours = Ours(chunks, vectors, embedder.encode, Path(tmp))
        build["ours"] = time.monotonic() - t
        t = time.monotonic()
        haystack = Haystack(chunks, vectors, default_model_path())
        build["haystack"] = time.monotonic() - t
        t = time.monotonic()
        seed = Seed(chunks, vectors, embedder.encode)
        build["seed"] = time.monotonic() - t
        systems = [ours, haystack, seed]
        hits: dict[str, dict[str, Hits]] = {s.name: {} for s in systems}
        latency: dict[str, list[float]] = {s.name: [] for s in systems}
        timed = len(queries) if latency_queries is None else latency_queries
        load_before = loadavg()
        try:
            for n, (qid, text) in enumerate(queries.items()):
                # Rotate who goes first, so no system always runs on a cold cache.
                for system in systems[n % 3:] + systems[: n % 3]:
                    t = time.perf_counter()
                    hits[system.name][qid] = system.search(text)
                    if WARMUP <= n < timed:
                        latency[system.name].append(time.perf_counter() - t)
                    if system is seed:
                        seed.keep_seed_depth()
                if n % 100 == 0:
                    log(f"  {n}/{len(queries)} queries ({time.monotonic() - started:.0f}s)")
        finally:
            ours.close()

    figures: dict[str, Any] = {}
    for system in systems:
        figures[system.name] = {
            **_scores(qrels, hits[system.name]),
            "latency": percentiles_ms(latency[system.name]),
            "index_build_s": round(build[system.name], 1),
        }
    figures["haystack"]["join_mode"] = "reciprocal_rank_fusion"
    figures["haystack"]["top_k"] = HAYSTACK_TOP_K
    figures["haystack"]["other_join_modes"] = {
        mode: _scores(qrels, {q: haystack.joined(text, mode) for q, text in queries.items()})
        for mode in Haystack.JOIN_MODES[1:]
    }
    figures["seed"]["top_k"] = TOP_K
    figures["seed"][f"at_seed_top_k_{SEED_TOP_K}"] = _scores(
        qrels, {q: seed.at_seed_top_k[text] for q, text in queries.items()})
    return {
        "split": "train",
        "queries": len(queries),
        "quick": quick,
        "chunks": len(chunks),
        "documents": len({c.external_id for c in chunks}),
        "top_k": TOP_K,
        "latency_queries": max(0, min(timed, len(queries)) - WARMUP),
        "chunk_vectors": "precomputed by the service's Embedder (title + chunk text), shared",
        "chunk_to_document": "a document ranks at its best (first-listed) chunk, for all three",
        "systems": figures,
        "loadavg_before_queries": load_before,
        "loadavg_after": loadavg(),
        "seconds": round(time.monotonic() - started, 1),
    }


def summary_lines(report: dict[str, Any]) -> str:
    s = report["systems"]
    return "baselines (SciFact train, {} queries): ".format(report["queries"]) + "; ".join(
        f"{name} nDCG@10 {v['ndcg@10']:.4f} p50 {v['latency']['p50_ms']:.1f} ms"
        for name, v in s.items()
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_QUERIES} train queries only")
    parser.add_argument("--latency-queries", type=int, default=None,
                        help="time only the first N queries (default: all)")
    args = parser.parse_args(argv)
    report = run(quick=args.quick, latency_queries=args.latency_queries)
    write_result(NAME, report)
    print(summary_lines(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
