"""Cold ingestion throughput end to end vs raw `model.encode` of the same chunks; re-ingest speedups.

Run: `python -m bench.ingest_throughput [--quick]`. Writes bench/results/ingest_throughput.json.

In one run:
1. The 17 good papers are parsed (`shared.parsing.parse_file`) and chunked (`shared.chunking.
   Chunker`, settings defaults) here, as the pipeline's parse stage does, to get the exact texts
   the pipeline embeds (each chunk under its paper's title, `Chunker.titled`) and the
   pipeline's embed batches (per file, `batch_size` chunks).
2. Raw encode of those texts, model loaded and warmed up first, timed from a barrier, with the
   pipeline's batch size (settings.embedding.batch_size) and its total thread count:
   - `raw_2proc_1thread`: 2 processes x 1 thread, each `encode`s half of the chunks (every
     other chunk) in one call. The pipeline's layout (2 worker processes x 1 thread): the
     fair comparison. Run twice (before the service starts and after it stops), best kept.
   - `raw_1proc_2threads`: 1 process x 2 threads, one `encode` of all chunks.
   - `raw_2proc_1thread_pipeline_batches`: 2 x 1, but one `encode` call per pipeline batch
     (per file, 32 chunks, batches dealt alternately): what the workers' model calls are, so the
     gap to the pipeline is pipeline overhead, and the gap to `raw_2proc_1thread` is batching
     (one big call sorts all texts by length, which pads less).
   No service runs while raw encode is timed. Each run records its CPU time, so a CPU-time
   ratio (raw CPU ms per chunk / the service's CPU ms per chunk) stands beside the wall-clock
   ratio: it holds when other processes share the cores, which the wall ratio does not.
3. A fresh deployment (new Redis: an empty embedding cache; API + 2 workers, 1 embedding thread
   each) ingests the papers into corpus `papers`: chunks/s = chunks_indexed / (finished_at -
   started_at) of the job; also per POST->terminal wall time (status polled every 50 ms).
4. Same run, same deployment: (a) the same folder into `papers` again (all files unchanged),
   (b) the same folder into a new corpus `papers-copy` (every embedding from the cache); each
   one's wall time and job time vs the cold ingest's.
5. A second fresh deployment with one worker process (two embedding threads, as `rag up
   --workers 1` gives it) ingests the same papers cold: 1 vs 2 worker processes.
Raw encode uses the backend the service runs with (RAG_EMBED_BACKEND: ONNX Runtime by default).
Targets (issues 2, 5 and 14): pipeline >= 0.9 x raw; re-ingest >= 50x, new-corpus >= 10x faster.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    deployment,
    good_papers,
    ingest,
    job_summary,
    loadavg,
    log,
    service_groups,
    service_pids,
    target,
    timeline_summary,
    write_result,
)

NAME = "ingest_throughput"
QUICK_PAPERS = 4


def chunk_papers(pdfs: list[Path]) -> dict[str, Any]:
    """The texts the pipeline embeds for `pdfs` and its embed batches (settings defaults)."""
    from shared.chunking import Chunker
    from shared.parsing import parse_file
    from shared.settings import Settings
    from shared.vectors.embedding import default_model_path

    s = Settings()
    chunker = Chunker.from_model_path(
        s.embedding.model_path or default_model_path(),
        max_tokens=s.chunking.max_tokens,
        overlap_tokens=s.chunking.overlap_tokens,
    )
    batch = s.embedding.batch_size
    texts: list[str] = []
    batches: list[list[str]] = []
    tokens = 0
    started = time.perf_counter()
    for pdf in pdfs:
        doc = parse_file(
            pdf, max_pages=s.limits.max_pages, max_bytes=int(s.limits.max_file_mb * 1024 * 1024)
        )
        # What the parse stage sends to be embedded: each chunk under its document's title.
        file_texts = [
            chunker.titled(doc.title, c.text, n_tokens=c.n_tokens) for c in chunker.chunk(doc)
        ]
        tokens += sum(chunker.count_tokens(t) for t in file_texts)
        texts.extend(file_texts)
        batches.extend(file_texts[i : i + batch] for i in range(0, len(file_texts), batch))
    return {
        "texts": texts,
        "batches": batches,
        "batch_size": batch,
        "tokens": tokens,
        "parse_chunk_s": round(time.perf_counter() - started, 3),
    }


# ---- raw encode in child processes ----------------------------------------------------------


def _encode_child(
    work: list[list[str]], threads: int, batch_size: int, barrier: Any, out: Any
) -> None:
    from bench.embed_backends import open_backend

    embedder = open_backend(backend(), threads=threads, batch_size=batch_size)
    embedder.encode(["warm up", "a second warm-up sentence of a few more words"])
    barrier.wait()
    t0 = time.monotonic()
    c0 = time.process_time()
    n = 0
    for texts in work:  # one encode call per item
        n += len(embedder.encode(texts))
    t1 = time.monotonic()
    cpu = time.process_time() - c0
    out.put({"t0": t0, "t1": t1, "n": n, "threads": threads, "calls": len(work), "cpu_s": cpu})


def backend() -> str:
    """The embedding backend the service runs with (RAG_EMBED_BACKEND, ONNX by default)."""
    from shared.settings import Settings

    return Settings().embedding.backend


def papers_folder(pdfs: list[Path]) -> Callable[[Path], None]:
    """A deployment's `prepare`: the papers copied into <corpus root>/papers."""

    def prepare(root: Path) -> None:
        folder = root / "papers"
        folder.mkdir()
        for pdf in pdfs:
            shutil.copy(pdf, folder / pdf.name)

    return prepare


def cold_ingest_one_worker(pdfs: list[Path]) -> dict[str, Any]:
    """The same papers, cold, through a deployment with one worker process (given both cores'
    threads, as `rag up --workers 1` does): the 1-vs-2-process comparison."""
    with deployment(workers=1, prepare=papers_folder(pdfs)) as dep:
        run = job_summary(ingest(dep.client, dep.corpus_root / "papers", "papers",
                                 cpu_roots=service_pids(dep.live)))
    return {**run, "chunks_per_s": round(run["chunks_indexed"] / run["job_s"], 2)}


def raw_encode(parts: list[list[list[str]]], *, threads: int, batch_size: int) -> dict[str, Any]:
    """Each part (a list of encode calls) in its own fresh process; wall from a shared barrier."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(parts))
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_encode_child, args=(p, threads, batch_size, barrier, out))
        for p in parts
    ]
    for p in procs:
        p.start()
    load_before = loadavg()
    reports = [out.get(timeout=1800) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    wall = max(r["t1"] for r in reports) - min(r["t0"] for r in reports)
    n = sum(r["n"] for r in reports)
    return {
        "processes": len(parts),
        "threads_each": reports[0]["threads"],
        "encode_calls": sum(r["calls"] for r in reports),
        "chunks": n,
        "wall_s": round(wall, 3),
        "per_process_s": [round(r["t1"] - r["t0"], 3) for r in reports],
        "chunks_per_s": round(n / wall, 2),
        "cpu_s": round(sum(r["cpu_s"] for r in reports), 3),
        "cpu_ms_per_chunk": round(1000 * sum(r["cpu_s"] for r in reports) / n, 2),
        "mean_cores_busy": round(sum(r["cpu_s"] for r in reports) / wall, 2),
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
    }


# ---- main -----------------------------------------------------------------------------------


def run(*, quick: bool = False) -> dict[str, Any]:
    pdfs = good_papers()
    if quick:
        pdfs = sorted(pdfs, key=lambda p: p.stat().st_size)[:QUICK_PAPERS]
    log(f"parsing and chunking {len(pdfs)} papers")
    data = chunk_papers(pdfs)
    texts, batches, bs = data["texts"], data["batches"], data["batch_size"]
    log(
        f"{len(texts)} chunks ({len(set(texts))} distinct), {len(batches)} pipeline batches "
        f"of <= {bs}, {data['tokens']} word pieces, parse+chunk {data['parse_chunk_s']}s"
    )

    raw: dict[str, Any] = {}
    log("raw encode: 2 processes x 1 thread, half the chunks each")
    raw["raw_2proc_1thread"] = raw_encode([[texts[0::2]], [texts[1::2]]], threads=1, batch_size=bs)
    log(f"  {raw['raw_2proc_1thread']}")
    log("raw encode: 1 process x 2 threads, all chunks")
    raw["raw_1proc_2threads"] = raw_encode([[texts]], threads=2, batch_size=bs)
    log(f"  {raw['raw_1proc_2threads']}")
    log("raw encode: 2 processes x 1 thread, one call per pipeline batch")
    raw["raw_2proc_1thread_pipeline_batches"] = raw_encode(
        [batches[0::2], batches[1::2]], threads=1, batch_size=bs
    )
    log(f"  {raw['raw_2proc_1thread_pipeline_batches']}")

    runs: dict[str, Any] = {}
    with deployment(workers=2, prepare=papers_folder(pdfs)) as dep:
        folder = dep.corpus_root / "papers"
        log("cold ingest (empty Redis)")
        pids = service_pids(dep.live)
        cold = ingest(
            dep.client, folder, "papers", cpu_roots=pids, cpu_groups=service_groups(dep.live)
        )
        runs["cold"] = job_summary(cold)
        cold_timeline = cold.get("cpu_timeline", [])
        log(f"  {runs['cold']}")
        log("re-ingest, same corpus (all unchanged)")
        runs["reingest_unchanged"] = job_summary(
            ingest(dep.client, folder, "papers", cpu_roots=pids)
        )
        log(f"  {runs['reingest_unchanged']}")
        log("ingest into a new corpus (all embeddings cached)")
        runs["new_corpus_cached"] = job_summary(
            ingest(dep.client, folder, "papers-copy", cpu_roots=pids)
        )
        log(f"  {runs['new_corpus_cached']}")
        corpora = dep.client.get("/corpora").json()

    log("cold ingest again with 1 worker process (2 threads)")
    one_worker = cold_ingest_one_worker(pdfs)
    log(f"  {one_worker}")

    # The fair raw figure again, now that the service has stopped: best of the two runs, since
    # other load on the machine only ever slows a run down (conservative for the ratio).
    log("raw encode again: 2 processes x 1 thread, half the chunks each")
    again = raw_encode([[texts[0::2]], [texts[1::2]]], threads=1, batch_size=bs)
    log(f"  {again}")
    first = raw["raw_2proc_1thread"]
    best = max((first, again), key=lambda r: r["chunks_per_s"])
    raw["raw_2proc_1thread"] = {
        **best,
        "chosen": "best of 2 runs (before the service started, after it stopped)",
        "runs": [
            {k: r[k] for k in ("wall_s", "chunks_per_s", "cpu_ms_per_chunk", "mean_cores_busy")}
            for r in (first, again)
        ],
    }

    cold_r = runs["cold"]
    chunks = cold_r["chunks_indexed"]
    pipeline = {
        "chunks": chunks,
        "job_s": cold_r["job_s"],
        "wall_s": cold_r["wall_s"],
        "chunks_per_s": round(chunks / cold_r["job_s"], 2),
        "chunks_per_s_wall": round(chunks / cold_r["wall_s"], 2),
        "same_chunks_as_raw": chunks == len(texts),
        "embeddings_computed": cold_r["embeddings_computed"],
        "embeddings_cached": cold_r["embeddings_cached"],
        "batches_per_worker": cold_r["workers"],
        "service_cpu_s": cold_r["service_cpu_s"],
        "cpu_ms_per_chunk": round(1000 * cold_r["service_cpu_s"] / chunks, 2),
        "mean_cores_busy": round(cold_r["service_cpu_s"] / cold_r["wall_s"], 2),
        "milestones": cold_r["milestones"],
        "cpu_utilisation": timeline_summary(cold_timeline),
        "cpu_timeline": cold_timeline,
    }
    fair = raw["raw_2proc_1thread"]["chunks_per_s"]
    ratios = {k: round(pipeline["chunks_per_s"] / v["chunks_per_s"], 3) for k, v in raw.items()}

    def speedup(name: str, field: str) -> float | None:
        other = runs[name][field]
        return round(cold_r[field] / other, 1) if other else None

    # CPU-time efficiency: robust when other processes share the cores (wall ratios are not).
    cpu_ratios = {
        k: round(v["cpu_ms_per_chunk"] / pipeline["cpu_ms_per_chunk"], 3) for k, v in raw.items()
    }
    # Other load on the machine shows as fewer cores busy than the processes could use.
    busy = {k: v["mean_cores_busy"] for k, v in raw.items()}
    busy["pipeline"] = pipeline["mean_cores_busy"]
    contention = {
        "mean_cores_busy": busy,
        "contended": busy["raw_2proc_1thread"] < 1.7,
        "note": "2 single-threaded processes should keep ~2 cores busy; less means other "
        "processes took CPU and the wall-clock ratios are unreliable: read the "
        "cpu-time ratios (CPU ms per chunk, raw / pipeline) instead.",
    }
    speedups = {
        "reingest_unchanged": {
            "wall_x": speedup("reingest_unchanged", "wall_s"),
            "job_x": speedup("reingest_unchanged", "job_s"),
        },
        "new_corpus_cached": {
            "wall_x": speedup("new_corpus_cached", "wall_s"),
            "job_x": speedup("new_corpus_cached", "job_s"),
        },
    }
    return {
        "quick": quick,
        "papers": [p.name for p in pdfs],
        "chunks": len(texts),
        "distinct_chunks": len(set(texts)),
        "word_pieces": data["tokens"],
        "batch_size": bs,
        "backend": backend(),
        "pipeline_layout": "2 worker processes x 1 embedding thread (RAG_EMBED_THREADS=1); API "
        "process indexes (BM25 + qdrant-edge upsert) on the same 2 cores",
        "workers_1_vs_2": {
            "one_worker_2_threads_chunks_per_s": one_worker["chunks_per_s"],
            "two_workers_1_thread_chunks_per_s": pipeline["chunks_per_s"],
            "two_over_one": round(pipeline["chunks_per_s"] / one_worker["chunks_per_s"], 3),
            "one_worker_run": one_worker,
        },
        "fair_comparison": "raw_2proc_1thread: same processes x threads as the workers",
        "raw_encode": raw,
        "pipeline_cold": pipeline,
        "pipeline_over_raw": ratios,
        "pipeline_over_raw_cpu_efficiency": cpu_ratios,
        "ingest_runs": runs,
        "speedups_vs_cold": speedups,
        "corpora": corpora.get("corpora"),
        "targets": {
            "pipeline_over_raw_fair": target(ratios["raw_2proc_1thread"], op=">=", bound=0.9),
            "pipeline_over_raw_fair_cpu_time": target(
                cpu_ratios["raw_2proc_1thread"], op=">=", bound=0.9
            ),
            "reingest_unchanged_speedup_wall": target(
                speedups["reingest_unchanged"]["wall_x"], op=">=", bound=50
            ),
            "new_corpus_cached_speedup_wall": target(
                speedups["new_corpus_cached"]["wall_x"], op=">=", bound=10
            ),
        },
        "raw_fair_chunks_per_s": fair,
        "contention": contention,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"the {QUICK_PAPERS} smallest papers only"
    )
    args = parser.parse_args(argv)
    report = run(quick=args.quick)
    write_result(NAME, report)
    print(summary_lines(report))
    return report


def summary_lines(r: dict[str, Any]) -> str:
    p = r["pipeline_cold"]
    raw = r["raw_encode"]
    sp = r["speedups_vs_cold"]
    lines = [
        f"ingest_throughput ({r['chunks']} chunks{', quick' if r['quick'] else ''}):",
        f"  pipeline cold  {p['chunks_per_s']:8.1f} chunks/s (job {p['job_s']:.1f}s, wall {p['wall_s']:.1f}s)",
    ]
    for k, v in raw.items():
        lines.append(
            f"  {k:36s} {v['chunks_per_s']:8.1f} chunks/s  pipeline/raw = "
            f"{r['pipeline_over_raw'][k]:.3f} (cpu-time basis "
            f"{r['pipeline_over_raw_cpu_efficiency'][k]:.3f})"
        )
    for k, v in sp.items():
        lines.append(f"  {k:20s} {v['wall_x']}x wall, {v['job_x']}x job time faster than cold")
    w = r["workers_1_vs_2"]
    lines.append(
        f"  1 worker x 2 threads {w['one_worker_2_threads_chunks_per_s']:.1f} chunks/s, "
        f"2 workers x 1 thread {w['two_workers_1_thread_chunks_per_s']:.1f} ({w['two_over_one']}x)"
    )
    busy = r["contention"]["mean_cores_busy"]
    lines.append(
        f"  cores busy: raw 2x1 {busy['raw_2proc_1thread']}, pipeline {busy['pipeline']}"
        + (
            " -- CONTENDED machine: trust the cpu-time ratios"
            if r["contention"]["contended"]
            else ""
        )
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main(sys.argv[1:])
