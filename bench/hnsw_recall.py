"""HNSW in the embedded (qdrant-edge) store on real SciFact vectors: recall against exact search,
query latency before and after `EdgeStore.optimize()`, build time, and memory.

Run: `python bench/hnsw_recall.py [--quick]`. Writes bench/results/hnsw_recall.json.

Data. Every SciFact chunk (~20k, cut by the project's Chunker) embedded by the ONNX
backend (cached under bench/results/cache/ by bench/embed_backends.py's `chunk_vectors`).
The 100k store adds synthetic chunks: each copies a random real chunk's vector plus gaussian
noise (sigma 0.02 per dimension, re-normalised: cosine ~0.93 to its source, so the space
keeps SciFact's clusters, only denser), and its text (hence its BM25 vector) is the words
of two random real chunks, half of each, shuffled. Queries: SciFact questions, embedded
by the same backend; BM25 vectors by the service's encoder.

Measures, per store size (`scifact` = the real chunks only; 100k):
- recall@10 (dense, limit 10) and recall@300 (limit 300, what hybrid retrieval asks for:
  RAG_RETRIEVAL_CANDIDATES) of HNSW against exact numpy search, for several search ef;
- p50/p95 of dense (limit 10 and 300), sparse (300) and a hybrid pair (dense 300 + sparse
  300, as the retriever issues them) on plain segments and after optimize, one thread; and
  `hybrid_query`: the uncached hybrid /search's work in the API process minus HTTP (the
  question embedded by ONNX, its BM25 vector, both searches, the shipped fusion, top 10);
- optimize wall time and the longest stall of a Python thread in this process meanwhile
  (the build runs in a child process; in-process it would hold the GIL throughout);
- RSS of a fresh process that opens the store and runs queries, minus one that only
  imported qdrant_edge; the store's size on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (
    loadavg,
    log,
    percentiles_ms,
    scifact_queries,
    target,
    write_result,
)
from bench.embed_backends import chunk_vectors, open_backend, scifact_chunk_texts
from shared.settings import Bm25Settings, QdrantSettings, RetrievalSettings
from shared.vectors.bm25 import Bm25Encoder
from shared.vectors.store.base import ChunkPoint, SparseVector
from shared.vectors.store.edge import EdgeStore

NAME = "hnsw_recall"
CORPUS = "bench"
SIGMA = 0.02
SEED = 7
UPSERT_BATCH = 500
EFS = (32, 64, 128, 256, 512)
MIN_RECALL = 0.99


# ---- points -----------------------------------------------------------------------------------


def point_id(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"hnsw-bench/{i}"))


def synthetic(
    vectors: np.ndarray, texts: Sequence[str], n: int, rng: np.random.Generator
) -> tuple[np.ndarray, list[str]]:
    """`n` synthetic chunks (vectors, texts) derived from the real ones (see the docstring)."""
    base = rng.integers(0, len(vectors), n)
    noisy = vectors[base] + SIGMA * rng.standard_normal((n, vectors.shape[1])).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    partner = rng.integers(0, len(texts), n)
    out = []
    for i, j in zip(base, partner, strict=True):
        a, b = texts[i].split(), texts[j].split()
        words = a[: len(a) // 2] + b[len(b) // 2 :]
        out.append(" ".join(rng.permutation(words).tolist()))
    return noisy.astype(np.float32), out


def batches(
    vectors: np.ndarray, texts: Sequence[str], encoder: Bm25Encoder, *, first_id: int
) -> Iterator[list[ChunkPoint]]:
    for start in range(0, len(vectors), UPSERT_BATCH):
        yield [
            ChunkPoint(
                id=point_id(first_id + i),
                dense=vectors[i].tolist(),
                sparse=encoder.encode_document(texts[i]),
                payload={"doc_id": f"d{(first_id + i) // 3}", "chunk_index": i, "text": texts[i]},
            )
            for i in range(start, min(start + UPSERT_BATCH, len(vectors)))
        ]


# ---- measurements -----------------------------------------------------------------------------


def exact_top(all_vectors: np.ndarray, queries: np.ndarray, k: int) -> list[list[str]]:
    tops = []
    for q in queries:
        scores = all_vectors @ q
        idx = np.argpartition(-scores, k)[:k]
        tops.append([point_id(int(i)) for i in idx[np.argsort(-scores[idx])]])
    return tops


def recall(store: EdgeStore, queries: np.ndarray, exact: list[list[str]], k: int) -> float:
    hits = [
        len({h.id for h in store.search_dense(CORPUS, q.tolist(), limit=k)} & set(want)) / k
        for q, want in zip(queries, exact, strict=True)
    ]
    return round(float(np.mean(hits)), 4)


def latencies(
    store: EdgeStore,
    dense: np.ndarray,
    sparse: Sequence[SparseVector],
    *,
    depth: int,
    query: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    def timed(run: Callable[[int], Any]) -> dict[str, float]:
        for i in range(5):
            run(i)
        samples = []
        for i in range(len(dense)):
            t0 = time.perf_counter()
            run(i)
            samples.append(time.perf_counter() - t0)
        return percentiles_ms(samples)

    def hybrid(i: int) -> None:
        store.search_dense(CORPUS, dense[i].tolist(), limit=depth)
        store.search_sparse(CORPUS, sparse[i], limit=depth)

    return {
        "dense_10": timed(lambda i: store.search_dense(CORPUS, dense[i].tolist(), limit=10)),
        f"dense_{depth}": timed(
            lambda i: store.search_dense(CORPUS, dense[i].tolist(), limit=depth)
        ),
        f"sparse_{depth}": timed(lambda i: store.search_sparse(CORPUS, sparse[i], limit=depth)),
        f"hybrid_{depth}": timed(hybrid),
        **({"hybrid_query": timed(query)} if query is not None else {}),
    }


def hybrid_query(
    store: EdgeStore, questions: Sequence[str], embed: Callable[[str], np.ndarray],
    encoder: Bm25Encoder,
) -> Callable[[int], Any]:
    """What an uncached hybrid /search does in the API process, minus HTTP: the retriever's
    `ranked_hits` (both lists RAG_RETRIEVAL_CANDIDATES deep without payload, their chunks'
    documents remembered, the shipped fusion, the page's payloads) with the question embedded
    by ONNX, one query, top 10."""
    from shared.search.chunk_documents import ChunkDocuments
    from shared.search.retriever import fusion_of, ranked_hits
    from shared.settings import RetrievalSettings

    fusion = fusion_of(RetrievalSettings())
    documents = ChunkDocuments()  # as the retriever's: what it has learnt stays for the run

    def run(i: int) -> Any:
        return ranked_hits(
            store, CORPUS, mode="hybrid", fusion=fusion, top_k=10,
            query_vector=lambda: embed(questions[i]),
            sparse_query=encoder.encode_query(questions[i]),
            documents=documents,
        )

    return run


def _longest_gap_ms(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run `work` while a Python thread ticks every 5 ms: (result, wall s, longest gap ms)."""
    ticks: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.005)

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    result = work()
    wall = time.perf_counter() - t0
    stop.set()
    thread.join()
    gap = float(np.diff(ticks).max()) if len(ticks) > 1 else wall
    return result, wall, round(gap * 1000, 1)


def optimize_watched(store: EdgeStore) -> dict[str, Any]:
    """optimize, timed by phase, and the longest a Python thread of this process stalled
    meanwhile; beside the longest stall over 3 s of doing nothing (load from elsewhere)."""
    phases: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: phases.append(record.getMessage())  # type: ignore[method-assign]
    edge_log = logging.getLogger("shared.vectors.store.edge")
    edge_log.addHandler(handler)
    edge_log.setLevel(logging.INFO)
    try:
        _, _, idle_gap = _longest_gap_ms(lambda: time.sleep(3))
        changed, wall, gap = _longest_gap_ms(lambda: store.optimize(CORPUS))
    finally:
        edge_log.removeHandler(handler)
    return {
        "changed": changed,
        "optimize_s": round(wall, 1),
        "phases": phases,
        "longest_python_stall_ms": gap,
        "longest_idle_stall_ms": idle_gap,
        **store.info(CORPUS),
    }


_RSS_PROBE = """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1])
def rss():
    status = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}
import qdrant_edge
from pathlib import Path
if sys.argv[2] == "baseline":
    print(json.dumps(rss())); sys.exit()
from shared.vectors.store.edge import EdgeStore
from shared.vectors.store.base import SparseVector
store = EdgeStore(Path(sys.argv[2]))
queries = np.load(sys.argv[3])
for q in queries:
    store.search_dense("bench", q.tolist(), limit=300)
    store.search_sparse("bench", SparseVector([1, 2, 3], [1.0, 1.0, 1.0]), limit=300)
print(json.dumps(rss()))
"""


def store_rss(path: Path, queries: np.ndarray) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        np.save(f.name, queries)

        def probe(arg: str) -> dict[str, float]:
            proc = subprocess.run(
                [sys.executable, "-c", _RSS_PROBE, str(REPO), arg, f.name],
                capture_output=True,
                text=True,
                timeout=900,
                check=True,
            )
            result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
            return result

        base, loaded = probe("baseline"), probe(str(path))
    return {
        "process_rss_mb": loaded["VmRSS"],
        "process_peak_rss_mb": loaded["VmHWM"],
        "baseline_rss_mb": base["VmRSS"],
        "store_rss_mb": round(loaded["VmRSS"] - base["VmRSS"], 1),
    }


def disk_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


# ---- one store size ----------------------------------------------------------------------------


def measure_size(
    *,
    label: str,
    parts: Sequence[tuple[np.ndarray, Sequence[str]]],
    dense_q: np.ndarray,
    sparse_q: Sequence[SparseVector],
    encoder: Bm25Encoder,
    depth: int,
    questions: Sequence[str],
    embed: Callable[[str], np.ndarray],
) -> dict[str, Any]:
    qdrant = QdrantSettings()
    all_vectors = np.concatenate([v for v, _ in parts])
    n = len(all_vectors)
    log(f"[{label}] {n} points: exact neighbours")
    exact = {k: exact_top(all_vectors, dense_q, k) for k in (10, depth)}
    out: dict[str, Any] = {"points": n}
    with tempfile.TemporaryDirectory(prefix="rag-hnsw-") as tmp:
        path = Path(tmp) / "edge"
        store = EdgeStore(
            path,
            hnsw_m=qdrant.hnsw_m,
            hnsw_ef_construct=qdrant.hnsw_ef_construct,
            hnsw_ef=qdrant.hnsw_ef,
        )
        store.ensure_corpus(CORPUS, dim=all_vectors.shape[1])
        t0, first = time.perf_counter(), 0
        for vectors, texts in parts:
            for batch in batches(vectors, texts, encoder, first_id=first):
                store.upsert(CORPUS, batch)
            first += len(vectors)
        out["upsert_s"] = round(time.perf_counter() - t0, 1)
        log(f"[{label}] upserted in {out['upsert_s']}s; plain-segment latencies")
        out["plain"] = {
            **store.info(CORPUS),
            "recall_at_10": recall(store, dense_q, exact[10], 10),
            "latency": latencies(store, dense_q, sparse_q, depth=depth,
                                 query=hybrid_query(store, questions, embed, encoder)),
        }
        out["optimize"] = optimize_watched(store)
        log(f"[{label}] optimize: {out['optimize']}")
        by_ef: dict[str, Any] = {}
        configured = store._dense_params
        import qdrant_edge as qe

        for ef in EFS:
            store._dense_params = qe.SearchParams(hnsw_ef=ef)
            by_ef[str(ef)] = {
                "recall_at_10": recall(store, dense_q, exact[10], 10),
                f"recall_at_{depth}": recall(store, dense_q, exact[depth], depth),
            }
        store._dense_params = configured
        out["hnsw"] = {
            "m": qdrant.hnsw_m,
            "ef_construct": qdrant.hnsw_ef_construct,
            "ef": qdrant.hnsw_ef,
            "recall_by_ef": by_ef,
            "latency": latencies(store, dense_q, sparse_q, depth=depth,
                                 query=hybrid_query(store, questions, embed, encoder)),
        }
        log(f"[{label}] hnsw: {by_ef}")
        store.close()
        out["disk_mb"] = disk_mb(path)
        out["memory"] = store_rss(path, dense_q[:100])
        log(f"[{label}] memory: {out['memory']}")
    return out


def run(*, quick: bool = False) -> dict[str, Any]:
    load_before = loadavg()
    depth = RetrievalSettings().candidates
    texts = scifact_chunk_texts()
    vectors, _ = chunk_vectors("onnx", texts, threads=0)
    questions = scifact_queries()[: 100 if quick else 300]
    dense_q, _ = chunk_vectors("onnx", questions, threads=0)
    encoder = Bm25Encoder(Bm25Settings())
    sparse_q = [encoder.encode_query(q) for q in questions]
    log(f"{len(texts)} real chunks, {len(questions)} queries, candidates {depth}")
    from shared.settings import EmbeddingSettings
    from shared.vectors.embedding import threads_for

    embedder = open_backend("onnx", threads=threads_for(1, EmbeddingSettings().threads))

    def embed(text: str) -> np.ndarray:
        return embedder.encode([text])[0]

    sizes: dict[str, Any] = {}
    sizes["scifact"] = measure_size(
        label="scifact",
        parts=[(vectors, texts)],
        dense_q=dense_q,
        sparse_q=sparse_q,
        encoder=encoder,
        depth=depth,
        questions=questions,
        embed=embed,
    )
    if not quick:
        rng = np.random.default_rng(SEED)
        syn_vectors, syn_texts = synthetic(vectors, texts, 100_000 - len(texts), rng)
        sizes["100k"] = measure_size(
            label="100k",
            parts=[(vectors, texts), (syn_vectors, syn_texts)],
            dense_q=dense_q,
            sparse_q=sparse_q,
            encoder=encoder,
            depth=depth,
            questions=questions,
            embed=embed,
        )

    configured = str(QdrantSettings().hnsw_ef)
    targets = {
        f"recall_at_10_{label}": target(
            r["hnsw"]["recall_by_ef"][configured]["recall_at_10"], op=">=", bound=MIN_RECALL
        )
        for label, r in sizes.items()
    }
    if "100k" in sizes:
        targets["hybrid_query_p50_ms_100k"] = target(
            sizes["100k"]["hnsw"]["latency"]["hybrid_query"]["p50_ms"], op="<=", bound=12
        )
    return {
        "candidates": depth,
        "real_chunks": len(texts),
        "queries": len(questions),
        "synthetic": {
            "sigma": SIGMA,
            "seed": SEED,
            "text": "half of each of two real chunks, shuffled",
        },
        "sizes": sizes,
        "targets": targets,
        "loadavg": {"before": load_before, "after": loadavg()},
    }


def summary_lines(r: dict[str, Any]) -> str:
    parts, depth = [], r["candidates"]
    for label, s in r["sizes"].items():
        ef = str(s["hnsw"]["ef"])
        parts.append(
            f"{label}: recall@10 {s['hnsw']['recall_by_ef'][ef]['recall_at_10']} (ef {ef}), "
            f"hybrid p50 {s['plain']['latency'][f'hybrid_{depth}']['p50_ms']} -> "
            f"{s['hnsw']['latency'][f'hybrid_{depth}']['p50_ms']} ms (with the query's "
            f"embedding and fusion {s['hnsw']['latency']['hybrid_query']['p50_ms']} ms), optimize "
            f"{s['optimize']['optimize_s']} s, store RSS {s['memory']['store_rss_mb']} MB"
        )
    return "hnsw_recall: " + "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the real chunks only, 100 queries")
    args = parser.parse_args(argv)
    report = run(quick=args.quick)
    write_result(NAME, report)
    print(summary_lines(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
