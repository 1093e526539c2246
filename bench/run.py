"""Every benchmark in one run (`make bench`): JSON per benchmark plus bench/results/summary.json.

Run: `python -m bench.run [--quick] [--skip-ingest] [--skip-search] [--skip-cache-ask]
[--skip-extractive-int8] [--skip-load-admission] [--skip-store-latency] [--skip-pdf-parsers]
[--skip-embed-backends] [--skip-hnsw] [--skip-generation] [--skip-baselines]
[--skip-chunk-granularity]`.

Steps, in order:
1. ingest_throughput: its own fresh deployment (cold ingest needs an empty Redis).
2. search_latency, cache_ask, extractive_int8 and load_admission: one fresh deployment with
   SciFact ingested (~20k chunks), shared by all four, so the corpus is embedded once.
3. store_latency, pdf_parsers, embed_backends (ONNX beside torch: one query, batches, start,
   parity on every SciFact chunk) and hnsw_recall (SciFact's ~20k and 100k chunks: recall@10
   against exact search, the whole hybrid query's p50, memory): the standalone scripts, as
   subprocesses.
4. baselines: SciFact train offline through ours, Haystack's in-memory hybrid pipeline and the
   seed's rank-bm25 + numpy retrieval (nDCG@10 and latency per query; needs the `bench` extra;
   about 10 minutes, plus embedding SciFact once if bench/tune_scifact.py has not cached it).
5. chunk_granularity (not with --quick): SciFact train over 200- and 128-token chunks read
   whole, the two chunkings side by side, and the shipped 128-token chunks with BM25 context
   (bench/chunk_granularity.py; its first run embeds ~32k texts, ~30 minutes).
6. generation: its own deployment with a llama.cpp server (SmolLM2, 1 thread), three papers.
A step that crashes is recorded in the summary and the rest still run; the exit status is 1 if
any step crashed (a missed target is a figure, not a crash). About 20 minutes in full on 2
cores, a few minutes with --quick.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import (
    baselines,
    cache_ask,
    chunk_granularity,
    extractive_int8,
    generation,
    ingest_throughput,
    load_admission,
    search_latency,
)
from bench.common import (
    QUICK_SCIFACT_DOCS,
    REPO,
    RESULTS_DIR,
    git_revision,
    loadavg,
    log,
    machine,
    scifact_deployment,
    write_result,
)


def _script(name: str, *, quick: bool = False) -> dict[str, Any]:
    """Run bench/<name>.py as it is run by hand; it writes bench/results/<name>.json."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / f"{name}.py"), *(["--quick"] if quick else [])],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench/{name}.py exited {proc.returncode}: {proc.stderr[-2000:]}")
    return json.loads((RESULTS_DIR / f"{name}.json").read_text())


def _store_figures(r: dict[str, Any]) -> dict[str, Any]:
    res = r["results"]
    return {
        "chunks": r["chunks"],
        "edge_dense_p50_ms": res["edge"]["dense"]["p50_ms"],
        "edge_sparse_p50_ms": res["edge"]["sparse"]["p50_ms"],
        "qdrant_local_dense_p50_ms": res["qdrant_local"]["dense"]["p50_ms"],
        "qdrant_local_sparse_p50_ms": res["qdrant_local"]["sparse"]["p50_ms"],
        "rank_bm25_p50_ms": res["rank_bm25"]["sparse"]["p50_ms"],
    }


def _embed_figures(r: dict[str, Any]) -> dict[str, Any]:
    sq, bt = r["single_query"], r["batch_32"]
    return {
        "threads": r["threads"],
        "single_query_p50_ms": {k: v["p50_ms"] for k, v in sq.items()},
        "batch_32_chunks_per_s": {k: v["chunks_per_s"] for k, v in bt.items()},
        "batch_32_cpu_s_per_chunk": {k: v["cpu_s_per_chunk"] for k, v in bt.items()},
        "start_s": {k: v["start_s"] for k, v in r["start"].items()},
        "start_rss_mb": {k: v["rss_mb"] for k, v in r["start"].items()},
        "parity": {k: r["parity"].get(k) for k in ("scope", "chunks", "min_cosine")},
    }


def _hnsw_figures(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"candidates": r["candidates"]}
    for label, s in r["sizes"].items():
        ef = str(s["hnsw"]["ef"])
        lat = s["hnsw"]["latency"]
        out[label] = {
            "points": s["points"],
            "recall_at_10": s["hnsw"]["recall_by_ef"][ef]["recall_at_10"],
            "ef": s["hnsw"]["ef"],
            "hybrid_pair_p50_ms": {"plain": s["plain"]["latency"][f"hybrid_{r['candidates']}"][
                "p50_ms"], "hnsw": lat[f"hybrid_{r['candidates']}"]["p50_ms"]},
            "hybrid_query_p50_ms": lat["hybrid_query"]["p50_ms"],
            "dense_10_p50_ms": lat["dense_10"]["p50_ms"],
            "optimize_s": s["optimize"]["optimize_s"],
            "store_rss_mb": s["memory"]["store_rss_mb"],
            "process_rss_mb": s["memory"]["process_rss_mb"],
            "disk_mb": s["disk_mb"],
        }
    return out


def _pdf_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {
            "pages_per_s": v["pages_per_s"],
            "dict_word_fraction": v["dict_word_fraction"],
            "column_passages_found": v["column_passages_found"],
        }
        for name, v in r["papers"].items()
    }


def _ingest_figures(r: dict[str, Any]) -> dict[str, Any]:
    p = r["pipeline_cold"]
    return {
        "chunks": r["chunks"],
        "pipeline_chunks_per_s": p["chunks_per_s"],
        "raw_chunks_per_s": {k: v["chunks_per_s"] for k, v in r["raw_encode"].items()},
        "pipeline_over_raw": r["pipeline_over_raw"],
        "pipeline_over_raw_cpu_efficiency": r["pipeline_over_raw_cpu_efficiency"],
        "cold_wall_s": p["wall_s"],
        "reingest_unchanged_wall_s": r["ingest_runs"]["reingest_unchanged"]["wall_s"],
        "new_corpus_cached_wall_s": r["ingest_runs"]["new_corpus_cached"]["wall_s"],
        "speedups_vs_cold": r["speedups_vs_cold"],
        "backend": r["backend"],
        "workers_1_vs_2": {k: v for k, v in r["workers_1_vs_2"].items() if k != "one_worker_run"},
        "contention": r["contention"],
    }


def _search_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "chunks": r["corpus"].get("corpus_chunks"),
        "queries_per_mode": r["queries_per_mode"],
        **{m: {k: v[k] for k in ("p50_ms", "p95_ms", "p99_ms")} for m, v in r["per_mode"].items()},
    }


def _cache_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "chunks": r["corpus"].get("corpus_chunks"),
        "load_generator": r["load_generator"],
        "cold_p50_ms": r["cold"]["p50_ms"],
        "cold_p99_ms": r["cold"]["p99_ms"],
        "cached_p50_ms": r["cached"]["p50_ms"],
        "cached_p99_ms": r["cached"]["p99_ms"],
        "cold_over_cached_p50": r["cold_over_cached_p50"],
        "cached_requests_per_s": r["cached_best_requests_per_s"],
        "cached_requests_per_s_at_connections": r["cached_best_connections"],
    }


def _granularity_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {"ndcg@10": r["ndcg@10"], "points": r["points"],
            "shipped_folds_up": r["shipped_folds_up_on_whole_200"]}


def _extractive_int8_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {"claims": r["claims"], **{
        f"{name}_{k}": v for name, figures in r["variants"].items() for k, v in figures.items()
    }, "int8_speedup": r["int8_speedup"]}


def _generation_figures(r: dict[str, Any]) -> dict[str, Any]:
    s = r["streamed"]
    return {
        "questions": r["setup"]["questions"],
        "max_tokens": r["setup"]["max_tokens"],
        "first_token_p50_ms": s["first_token"]["p50_ms"] if s["first_token"] else None,
        "total_p50_ms": s["total"]["p50_ms"],
        "fallbacks": s["fallbacks"],
        "uncached_p50_ms": r["uncached"]["p50_ms"],
        "cached_p50_ms": r["cached"]["p50_ms"],
        "uncached_over_cached_p50": r["uncached_over_cached_p50"],
    }


def _admission_figures(r: dict[str, Any]) -> dict[str, Any]:
    load = r["cold_load"]
    return {
        "chunks": r["corpus"].get("corpus_chunks"),
        "load_generator": r["load_generator"],
        "cold_connections": load["connections"],
        "cold_requests": load.get("requests"),
        "cold_non_2xx": load.get("non_2xx", load.get("statuses")),
        "health_p99_ms": r["under_load"]["health"]["p99_ms"],
        "cached_ask_p99_ms": r["under_load"]["cached_ask"]["p99_ms"],
        "api_rss_growth_mib": r["api_rss_mib"]["growth"],
    }


def _baseline_figures(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "queries": r["queries"],
        **{
            name: {"ndcg@10": v["ndcg@10"], "p50_ms": v["latency"]["p50_ms"]}
            for name, v in r["systems"].items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every benchmark's --quick mode")
    parser.add_argument(
        "--merge", action="store_true",
        help="keep the steps of the last summary.json this run does not repeat (each step "
        "records its revision and time)",
    )
    for step in ("ingest", "search", "cache-ask", "extractive-int8", "load-admission",
                 "store-latency", "pdf-parsers", "embed-backends", "hnsw", "generation",
                 "baselines", "chunk-granularity"):
        parser.add_argument(f"--skip-{step}", action="store_true")
    args = parser.parse_args(argv)
    quick = args.quick

    started = time.perf_counter()
    steps: dict[str, dict[str, Any]] = {}

    def step(
        name: str,
        fn: Callable[[], dict[str, Any]],
        figures: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, Any] | None:
        log(f"=== {name}")
        t0 = time.perf_counter()
        entry: dict[str, Any] = {
            "revision": git_revision(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "loadavg_before": loadavg(),
        }
        report = None
        try:
            report = fn()
            entry.update(status="ok", figures=figures(report), targets=report.get("targets", {}))
        except Exception as exc:  # noqa: BLE001 - record it, run the other steps
            traceback.print_exc()
            entry.update(status="error", error=f"{type(exc).__name__}: {exc}"[:2000])
        entry["seconds"] = round(time.perf_counter() - t0, 1)
        entry["loadavg_after"] = loadavg()
        steps[name] = entry
        log(f"=== {name}: {entry['status']} in {entry['seconds']}s")
        return report

    reports: dict[str, dict[str, Any]] = {}

    def measured(
        mod: Any, figures: Callable[[dict[str, Any]], dict[str, Any]], run: Callable[[], Any]
    ) -> None:
        """A benchmark module's step: its report written to bench/results/<NAME>.json."""

        def go() -> dict[str, Any]:
            r: dict[str, Any] = run()
            write_result(mod.NAME, r)
            return r

        if (r := step(mod.NAME, go, figures)) is not None:
            reports[mod.NAME] = r

    if not args.skip_ingest:
        measured(ingest_throughput, _ingest_figures, lambda: ingest_throughput.run(quick=quick))

    if not (args.skip_search and args.skip_cache_ask and args.skip_extractive_int8
            and args.skip_load_admission):
        log("=== SciFact deployment for search_latency and cache_ask")
        t0 = time.perf_counter()
        try:
            with scifact_deployment(docs=QUICK_SCIFACT_DOCS if quick else None) as (dep, info):
                steps["scifact_ingest"] = {
                    "status": "ok",
                    "figures": info,
                    "seconds": round(time.perf_counter() - t0, 1),
                }
                for skip, mod, figures in (
                    (args.skip_search, search_latency, _search_figures),
                    (args.skip_cache_ask, cache_ask, _cache_figures),
                    (args.skip_extractive_int8, extractive_int8, _extractive_int8_figures),
                    # last: it leaves the API busy for a while
                    (args.skip_load_admission, load_admission, _admission_figures),
                ):
                    if not skip:
                        measured(mod, figures, lambda m=mod: m.run_on(dep, info, quick=quick))
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc()
            steps.setdefault("scifact_ingest", {})
            steps["scifact_ingest"].update(
                status="error", error=f"{type(exc).__name__}: {exc}"[:2000]
            )

    if not args.skip_store_latency:
        step("store_latency", lambda: _script("store_latency"), _store_figures)
    if not args.skip_pdf_parsers:
        step("pdf_parsers", lambda: _script("pdf_parsers"), _pdf_figures)
    if not args.skip_embed_backends:
        step("embed_backends", lambda: _script("embed_backends", quick=quick), _embed_figures)
    if not args.skip_hnsw:
        step("hnsw_recall", lambda: _script("hnsw_recall", quick=quick), _hnsw_figures)
    if not args.skip_baselines:
        measured(baselines, _baseline_figures, lambda: baselines.run(quick=quick))
    if not (args.skip_chunk_granularity or quick):  # its first run embeds ~32k texts
        measured(chunk_granularity, _granularity_figures, chunk_granularity.run)
    if not args.skip_generation:
        measured(generation, _generation_figures, lambda: generation.run(
            quick=quick, repeats=5 if quick else 20, max_tokens=96))

    if args.merge and (RESULTS_DIR / "summary.json").exists():
        earlier = json.loads((RESULTS_DIR / "summary.json").read_text())["steps"]
        steps = {**{k: v for k, v in earlier.items() if k not in steps}, **steps}
    targets = {
        f"{name}.{t}": v for name, e in steps.items() for t, v in e.get("targets", {}).items()
    }
    summary = {
        "quick": quick,
        "seconds": round(time.perf_counter() - started, 1),
        "steps": steps,
        "targets": targets,
        "targets_met": sum(1 for v in targets.values() if v["met"]),
        "targets_missed": [k for k, v in targets.items() if v["met"] is False],
    }
    write_result("summary", summary)
    print(render(summary, reports))
    return 1 if any(e.get("status") == "error" for e in steps.values()) else 0


def render(summary: dict[str, Any], reports: dict[str, dict[str, Any]]) -> str:
    lines = [
        (
            f"rag-papers benchmarks ({'quick' if summary['quick'] else 'full'}, "
            f"{summary['seconds']:.0f}s, revision {git_revision()}, {machine()['cpus']} cpus)"
        )
    ]
    for mod, name in (
        (ingest_throughput, "ingest_throughput"),
        (search_latency, "search_latency"),
        (cache_ask, "cache_ask"),
        (load_admission, "load_admission"),
        (generation, "generation"),
        (baselines, "baselines"),
    ):
        if name in reports:
            lines.append(mod.summary_lines(reports[name]))
    s = summary["steps"]
    if s.get("store_latency", {}).get("status") == "ok":
        f = s["store_latency"]["figures"]
        lines.append(
            f"store_latency ({f['chunks']} chunks): edge dense p50 {f['edge_dense_p50_ms']} ms, "
            f"sparse p50 {f['edge_sparse_p50_ms']} ms; rank-bm25 p50 {f['rank_bm25_p50_ms']} ms"
        )
    if s.get("pdf_parsers", {}).get("status") == "ok":
        f = s["pdf_parsers"]["figures"]
        lines.append(
            "pdf_parsers: " + ", ".join(f"{k} {v['pages_per_s']} pages/s" for k, v in f.items())
        )
    for name, e in s.items():
        if e.get("status") == "error":
            lines.append(f"{name}: ERROR {e['error'][:300]}")
    lines.append("targets:")
    for key, t in summary["targets"].items():
        mark = "met " if t["met"] else ("MISS" if t["met"] is False else " ?  ")
        lines.append(f"  [{mark}] {key}: {t['value']} (target {t['target']})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
