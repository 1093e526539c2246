"""Query latency of the vector stores on 10k research-paper chunks: dense and BM25 sparse.

Run: `python bench/store_latency.py [SCIFACT_DIR]` (default: ../shared/data/scifact beside the
repo). Prints JSON and writes bench/results/store_latency.json.

Chunks are SciFact abstracts (title + text) cut into windows of 100 words with 20 words of
overlap, until there are 10,000; each gets a random 384-d unit vector (the size of
all-MiniLM-L6-v2), since latency does not depend on what the vectors mean. Dense queries are
stored vectors plus noise; sparse queries are SciFact train questions through the BM25 encoder.
Backends: EdgeStore as ingested (plain segments, brute-force dense) and after `optimize()`
(HNSW), QdrantStore in local `path=` mode (fewer queries: it is slow), and rank-bm25's
`get_scores` over the same tokens in memory. Times are per single query, one thread, after a
few warm-up queries; dense recall@10 is against exact numpy search.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.vectors.bm25 import Bm25Encoder
from shared.vectors.store.base import ChunkPoint, VectorStore

DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
RESULTS = REPO / "bench" / "results" / "store_latency.json"
N_CHUNKS = 10_000
DIM = 384
WINDOW, OVERLAP = 100, 20
WARMUP = 5
BATCH = 256


def load_chunks(data: Path) -> list[tuple[str, str, int]]:
    """(doc_id, text, chunk_index) windows over the SciFact abstracts, N_CHUNKS of them."""
    chunks: list[tuple[str, str, int]] = []
    with (data / "corpus.jsonl").open() as lines:
        for line in lines:
            doc = json.loads(line)
            words = f"{doc['title']} {doc['text']}".split()
            for index, start in enumerate(range(0, max(len(words) - OVERLAP, 1), WINDOW - OVERLAP)):
                chunks.append((doc["_id"], " ".join(words[start : start + WINDOW]), index))
                if len(chunks) == N_CHUNKS:
                    return chunks
    raise SystemExit(f"only {len(chunks)} chunks in {data}: need {N_CHUNKS}")


def load_queries(data: Path) -> list[str]:
    train = {
        row.split("\t")[0] for row in (data / "qrels" / "train.tsv").read_text().splitlines()[1:]
    }
    with (data / "queries.jsonl").open() as lines:
        return [q["text"] for q in map(json.loads, lines) if q["_id"] in train]


def percentiles(samples_s: Sequence[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "queries": len(ms),
    }


def timed(
    run: Callable[[Any], Any], queries: Sequence[Any] | np.ndarray
) -> tuple[dict[str, float], list[Any]]:
    for query in queries[:WARMUP]:
        run(query)
    samples, results = [], []
    for query in queries:
        start = time.perf_counter()
        results.append(run(query))
        samples.append(time.perf_counter() - start)
    return percentiles(samples), results


def measure_store(
    store: VectorStore,
    *,
    dense_queries: np.ndarray,
    sparse_queries: list[Any],
    exact_top10: list[set[str]],
) -> dict[str, Any]:
    dense, hits = timed(lambda v: store.search_dense("bench", v.tolist(), limit=10), dense_queries)
    recall = np.mean(
        [len({h.id for h in got} & want) / 10 for got, want in zip(hits, exact_top10, strict=True)]
    )
    sparse, _ = timed(lambda v: store.search_sparse("bench", v, limit=10), sparse_queries)
    return {"dense": dense, "dense_recall_at_10": round(float(recall), 4), "sparse": sparse}


def ingest(store: VectorStore, points: list[ChunkPoint]) -> float:
    start = time.perf_counter()
    store.ensure_corpus("bench", dim=DIM)
    for offset in range(0, len(points), BATCH):
        store.upsert("bench", points[offset : offset + BATCH])
    elapsed = time.perf_counter() - start
    assert store.count("bench") == len(points), store.count("bench")
    return round(elapsed, 2)


def main(data: Path) -> dict[str, Any]:
    from qdrant_client import QdrantClient
    from rank_bm25 import BM25Okapi

    from shared.vectors.store.edge import EdgeStore
    from shared.vectors.store.qdrant import QdrantStore

    rng = np.random.default_rng(7)
    chunks = load_chunks(data)
    question_texts = load_queries(data)
    tokenizer = Bm25Encoder()
    tokens = [tokenizer.tokenize(text) for _, text, _ in chunks]
    encoder = Bm25Encoder(avg_len=sum(map(len, tokens)) / len(tokens))

    vectors = rng.standard_normal((N_CHUNKS, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{d}/{i}")) for d, _, i in chunks]
    points = [
        ChunkPoint(
            id=pid,
            dense=vector.tolist(),
            sparse=encoder.encode_document(text),
            payload={"doc_id": doc_id, "chunk_index": index, "text": text},
        )
        for pid, vector, (doc_id, text, index) in zip(ids, vectors, chunks, strict=True)
    ]

    def dense_queries(n: int) -> tuple[np.ndarray, list[set[str]]]:
        picks = vectors[rng.integers(0, N_CHUNKS, n)] + 0.05 * rng.standard_normal((n, DIM))
        queries = (picks / np.linalg.norm(picks, axis=1, keepdims=True)).astype(np.float32)
        top = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        return queries, [{ids[i] for i in row} for row in top]

    results: dict[str, Any] = {}
    full_dense, full_exact = dense_queries(300)
    full_sparse = [encoder.encode_query(q) for q in question_texts[:300]]

    with tempfile.TemporaryDirectory() as tmp:
        edge = EdgeStore(Path(tmp) / "edge")
        ingest_s = ingest(edge, points)
        results["edge"] = {
            "ingest_s": ingest_s,
            **measure_store(
                edge, dense_queries=full_dense, sparse_queries=full_sparse, exact_top10=full_exact
            ),
        }
        start = time.perf_counter()
        edge.optimize("bench")
        optimize_s = round(time.perf_counter() - start, 2)
        results["edge_optimized"] = {
            "optimize_s": optimize_s,
            **edge.info("bench"),
            **measure_store(
                edge, dense_queries=full_dense, sparse_queries=full_sparse, exact_top10=full_exact
            ),
        }
        edge.close()
        print(f"edge done: {results['edge']}", file=sys.stderr)

        local = QdrantStore(QdrantClient(path=str(Path(tmp) / "qdrant-local")))
        ingest_s = ingest(local, points)
        few_dense, few_exact = dense_queries(60)
        results["qdrant_local"] = {
            "ingest_s": ingest_s,
            **measure_store(
                local,
                dense_queries=few_dense,
                sparse_queries=full_sparse[:40],
                exact_top10=few_exact,
            ),
        }
        local.close()
        print(f"qdrant local done: {results['qdrant_local']}", file=sys.stderr)

    start = time.perf_counter()
    okapi = BM25Okapi(tokens, k1=encoder.k1, b=encoder.b)
    build_s = round(time.perf_counter() - start, 2)
    query_tokens = [list(dict.fromkeys(encoder.tokenize(q))) for q in question_texts[:100]]
    sparse, _ = timed(lambda q: np.argsort(-okapi.get_scores(q))[:10], query_tokens)
    results["rank_bm25"] = {"build_s": build_s, "sparse": sparse}

    return {
        "chunks": N_CHUNKS,
        "dim": DIM,
        "mean_chunk_tokens": round(encoder.avg_len, 1),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "results": results,
    }


if __name__ == "__main__":
    report = main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
