"""The two embedding backends side by side: ONNX Runtime (`OnnxEmbedder`) and torch (`Embedder`).

Run: `python bench/embed_backends.py [--quick] [--parity all|sample]`. Writes
bench/results/embed_backends.json.

Figures, both backends with the same thread count (what `rag serve` gives its embedder):
- single query: SciFact questions embedded one at a time (the /search path), p50/p95;
- batch throughput: SciFact chunks in batches of 32 in file order (what an embed task
  receives), chunks/s and CPU seconds per chunk;
- start: a fresh interpreter's import + load + first encode, and its RSS; for ONNX both the
  first start (exports the model) and a later one (loads the cached file);
- parity: cosine between the two backends' vectors for every SciFact chunk (`--parity all`,
  the default; about 20k chunks, so 20-40 min on 2 shared cores the first time, then cached
  under bench/results/cache/) or a fixed sample of 1,000 (`--parity sample`, the same
  sample as tests/integration/test_onnx_parity.py). Target: every cosine >= 0.999.
Backends alternate query by query and batch by batch, so load from other processes falls
on both alike.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.common import (
    RESULTS_DIR,
    SCIFACT_DIR,
    loadavg,
    log,
    percentiles_ms,
    scifact_queries,
    target,
    write_result,
)

NAME = "embed_backends"
CACHE_DIR = RESULTS_DIR / "cache"
BACKENDS = ("onnx", "torch")
BATCH = 32
PARITY_SAMPLE = 1000
PARITY_SEED = 14  # the same sample as tests/integration/test_onnx_parity.py
MIN_COSINE = 0.999

Encoder = Callable[[Sequence[str]], np.ndarray]


# ---- SciFact chunks and their vectors (cached) ---------------------------------------------


def scifact_chunk_texts() -> list[str]:
    """What the embed stage embeds for every chunk of SciFact's corpus.jsonl (default settings):
    the paper's title, cut to fit, then the chunk's text (`Chunker.titled`, chunking signature
    v2)."""
    from shared.chunking import Chunker
    from shared.parsing import iter_jsonl
    from shared.settings import ChunkingSettings
    from shared.vectors.embedding import default_model_path

    chunking = ChunkingSettings()
    corpus = SCIFACT_DIR / "corpus.jsonl"
    key = hashlib.sha256(corpus.read_bytes())
    key.update(f"{chunking.max_tokens}/{chunking.overlap_tokens}/titled".encode())
    path = CACHE_DIR / f"scifact-chunks-{key.hexdigest()[:12]}.json"
    if path.exists():
        texts: list[str] = json.loads(path.read_text())
        return texts
    chunker = Chunker.from_model_path(
        default_model_path(),
        max_tokens=chunking.max_tokens,
        overlap_tokens=chunking.overlap_tokens,
    )
    texts = [
        chunker.titled(doc.title, c.text, n_tokens=c.n_tokens)
        for doc in iter_jsonl(corpus)
        for c in chunker.chunk(doc)
    ]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(texts))
    return texts


def open_backend(name: str, *, threads: int, batch_size: int = BATCH) -> Any:
    """The `name` backend's embedder (ONNX: its export cached under bench/results/cache)."""
    if name == "onnx":
        from shared.vectors.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(
            cache_dir=CACHE_DIR / "models", threads=threads, batch_size=batch_size
        )
    from shared.vectors.embedding import Embedder

    return Embedder(threads=threads, batch_size=batch_size)


def _digest(texts: Sequence[str], model_id: str) -> str:
    h = hashlib.sha256(model_id.encode())
    for text in texts:
        h.update(b"\0" + text.encode())
    return h.hexdigest()[:12]


def chunk_vectors(
    backend: str, texts: Sequence[str], *, threads: int, embedder: Any = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """`texts` embedded by `backend` in batches of 32, cached as .npy with a timing sidecar."""
    from shared.vectors.embedding import default_model_path, model_identity

    stem = CACHE_DIR / f"vectors-{backend}-{_digest(texts, model_identity(default_model_path()))}"
    npy, meta = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.exists() and meta.exists():
        return np.load(npy), json.loads(meta.read_text())
    embedder = embedder or open_backend(backend, threads=threads)
    log(f"embedding {len(texts)} chunks with {backend} (cached afterwards in {npy.name})")
    parts, started, cpu0 = [], time.perf_counter(), time.process_time()
    for start in range(0, len(texts), BATCH):
        parts.append(embedder.encode(texts[start : start + BATCH]))
        if start and start % (BATCH * 64) == 0:
            log(f"  {backend}: {start}/{len(texts)} ({time.perf_counter() - started:.0f}s)")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    vectors = np.concatenate(parts)
    info = {
        "chunks": len(texts),
        "wall_s": round(wall, 1),
        "chunks_per_s": round(len(texts) / wall, 1),
        "cpu_s_per_chunk": round(cpu / len(texts), 4),
        "threads": threads,
        "loadavg_after": loadavg(),
    }
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    np.save(npy, vectors)
    meta.write_text(json.dumps(info))
    return vectors, info


# ---- measurements --------------------------------------------------------------------------


def single_query(encoders: dict[str, Encoder], queries: Sequence[str]) -> dict[str, Any]:
    samples: dict[str, list[float]] = {name: [] for name in encoders}
    for name, encode in encoders.items():
        for q in queries[:5]:
            encode([q])
    for i, query in enumerate(queries):
        names = list(encoders) if i % 2 == 0 else list(reversed(encoders))
        for name in names:
            t0 = time.perf_counter()
            encoders[name]([query])
            samples[name].append(time.perf_counter() - t0)
    return {name: percentiles_ms(s) for name, s in samples.items()}


def batch_throughput(encoders: dict[str, Encoder], texts: Sequence[str]) -> dict[str, Any]:
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    wall = dict.fromkeys(encoders, 0.0)
    cpu = dict.fromkeys(encoders, 0.0)
    for name, encode in encoders.items():
        encode(batches[0])
    for i, batch in enumerate(batches):
        names = list(encoders) if i % 2 == 0 else list(reversed(encoders))
        for name in names:
            t0, c0 = time.perf_counter(), time.process_time()
            encoders[name](batch)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    n = sum(len(b) for b in batches)
    return {
        name: {
            "chunks": n,
            "batches": len(batches),
            "chunks_per_s": round(n / wall[name], 1),
            "cpu_s_per_chunk": round(cpu[name] / n, 4),
        }
        for name in encoders
    }


_START_PROBE = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[1])
from pathlib import Path
if sys.argv[2] == "onnx":
    from shared.vectors.onnx_embedder import OnnxEmbedder
    e = OnnxEmbedder(cache_dir=Path(sys.argv[3]), threads=int(sys.argv[4]))
else:
    from shared.vectors.embedding import Embedder
    e = Embedder(threads=int(sys.argv[4]))
e.encode(["warm up"])
load_s = time.perf_counter() - t0
rss = [l for l in open("/proc/self/status") if l.startswith("VmRSS")][0].split()[1]
print(json.dumps({"start_s": round(load_s, 2), "rss_mb": round(int(rss) / 1024, 1),
                  "torch_imported": "torch" in sys.modules}))
"""


def start_cost(backend: str, *, cache_dir: Path, threads: int) -> dict[str, Any]:
    """A fresh interpreter: import, load (and export, if `cache_dir` has no model yet), encode."""
    proc = subprocess.run(
        [sys.executable, "-c", _START_PROBE, str(REPO), backend, str(cache_dir), str(threads)],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def parity(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    cos = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {
        "chunks": len(cos),
        "min_cosine": round(float(cos.min()), 7),
        "p001_cosine": round(float(np.quantile(cos, 0.001)), 7),
        "mean_cosine": round(float(cos.mean()), 7),
        "below_0_999": int((cos < MIN_COSINE).sum()),
        "max_abs_diff": float(np.abs(a - b).max()),
    }


def parity_sample(n_chunks: int) -> np.ndarray:
    """Indices of the fixed sample the integration test checks (sorted)."""
    rng = np.random.default_rng(PARITY_SEED)
    return np.sort(rng.choice(n_chunks, size=min(PARITY_SAMPLE, n_chunks), replace=False))


# ---- the run --------------------------------------------------------------------------------


def run(*, quick: bool = False, parity_mode: str | None = None) -> dict[str, Any]:
    from shared.settings import EmbeddingSettings
    from shared.vectors.embedding import threads_for

    parity_mode = parity_mode or ("sample" if quick else "all")
    threads = threads_for(1, EmbeddingSettings().threads)
    load_before = loadavg()
    texts = scifact_chunk_texts()
    queries = scifact_queries()[: 50 if quick else 300]
    log(f"{len(texts)} SciFact chunks, {len(queries)} queries, {threads} threads per backend")

    report: dict[str, Any] = {"threads": threads, "scifact_chunks": len(texts)}
    with tempfile.TemporaryDirectory(prefix="rag-onnx-") as fresh:
        report["start"] = {
            "onnx_first_start_with_export": start_cost(
                "onnx", cache_dir=Path(fresh), threads=threads
            ),
            "onnx_cached": start_cost("onnx", cache_dir=Path(fresh), threads=threads),
            "torch": start_cost("torch", cache_dir=Path(fresh), threads=threads),
        }
    log(f"start: {report['start']}")

    embedders = {name: open_backend(name, threads=threads) for name in BACKENDS}
    encoders: dict[str, Encoder] = {name: e.encode for name, e in embedders.items()}
    assert embedders["onnx"].model_id == embedders["torch"].model_id
    report["model_id"] = embedders["onnx"].model_id

    report["single_query"] = single_query(encoders, queries)
    log(f"single query: {report['single_query']}")
    report["batch_32"] = batch_throughput(encoders, texts[: (8 if quick else 40) * BATCH])
    log(f"batch: {report['batch_32']}")

    if parity_mode == "all":
        vectors, full = {}, {}
        for name in BACKENDS:
            vectors[name], full[name] = chunk_vectors(
                name, texts, threads=threads, embedder=embedders[name]
            )
        report["full_corpus_encode"] = full
        report["parity"] = {
            "scope": "every SciFact chunk",
            **parity(vectors["onnx"], vectors["torch"]),
        }
    else:
        picked = [texts[i] for i in parity_sample(len(texts))]
        report["parity"] = {
            "scope": f"fixed sample of {len(picked)} chunks (seed {PARITY_SEED})",
            **parity(encoders["onnx"](picked), encoders["torch"](picked)),
        }
    log(f"parity: {report['parity']}")

    sq, bt = report["single_query"], report["batch_32"]
    report["onnx_speedup"] = {
        "single_query_p50": round(sq["torch"]["p50_ms"] / sq["onnx"]["p50_ms"], 2),
        "batch_chunks_per_s": round(bt["onnx"]["chunks_per_s"] / bt["torch"]["chunks_per_s"], 2),
    }
    report["targets"] = {
        "parity_min_cosine": target(report["parity"]["min_cosine"], op=">=", bound=MIN_COSINE),
        "onnx_batch_over_torch": target(
            report["onnx_speedup"]["batch_chunks_per_s"], op=">=", bound=1.0
        ),
        "onnx_single_query_over_torch": target(
            report["onnx_speedup"]["single_query_p50"], op=">=", bound=1.0
        ),
    }
    report["loadavg"] = {"before": load_before, "after": loadavg()}
    return report


def summary_lines(r: dict[str, Any]) -> str:
    sq, bt, p = r["single_query"], r["batch_32"], r["parity"]
    return (
        f"embed_backends ({r['threads']} threads): single query p50 onnx {sq['onnx']['p50_ms']} ms"
        f" / torch {sq['torch']['p50_ms']} ms; batch-32 onnx {bt['onnx']['chunks_per_s']}"
        f" / torch {bt['torch']['chunks_per_s']} chunks/s; parity min cosine {p['min_cosine']}"
        f" over {p['chunks']} chunks"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer queries and batches")
    parser.add_argument(
        "--parity", choices=("all", "sample"), help="default: all, or sample with --quick"
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick, parity_mode=args.parity or ("sample" if args.quick else "all"))
    write_result(NAME, report)
    print(summary_lines(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
