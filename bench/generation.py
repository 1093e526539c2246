"""Generated answers through the API on the embedded llama.cpp server: time to first token and
total time of uncached answers, and the latency of cached ones beside uncached ones.

Run: `python -m bench.generation [--quick]`. Writes bench/results/generation.json.

Setup: SmolLM2-135M-Instruct (Q4_1 GGUF) served by `python -m shared.generation.llama_server`
with 1 thread (started as `rag up --llm` starts it), a fresh deployment with 1 worker and
RAG_GENERATOR=openai, three shared papers ingested (pasa, CiteSee, papermage).
- streamed: each question once, POST /ask with "stream": true and the cache off; time to the
  first `token` event and to the `final` event, measured by the client on loopback.
- uncached vs cached: each question once more without streaming (cache on: a miss, an LLM
  answer), then `--repeats` times (answer-tier hits). Loopback round trips; a cached answer
  never leaves the API process (the fast path answers it from one Redis lookup), so its time
  is the server's plus ~0.3 ms of client.
Answers are capped at RAG_LLM_MAX_TOKENS (--max-tokens, 96) tokens; top_k 3 keeps prompts
near 1,000 tokens. Fallbacks are counted: a run on a loaded machine may time out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    PAPERS_DIR,
    deployment,
    ingest,
    loadavg,
    log,
    percentiles_ms,
    write_result,
)

NAME = "generation"
PAPERS = ("pasa.pdf", "2302.07302v1.pdf", "papermage.pdf")
QUESTIONS = (
    "What are the two agents of PaSa and what does each one do?",
    "How was PaSa trained?",
    "How does CiteSee decide which citations to highlight?",
    "What did the CiteSee lab study find?",
    "What is papermage and what does it provide?",
    "How does papermage represent a document's layers?",
    "What dataset of academic queries was built for PaSa?",
    "How is PaSa evaluated against Google Scholar?",
    "What is a Recipe in papermage?",
    "How did participants use CiteSee in the field deployment?",
)
TOP_K = 3


def _stream_ask(client: httpx.Client, question: str) -> dict[str, Any]:
    body = {"question": question, "corpus": "papers", "top_k": TOP_K, "use_cache": False,
            "stream": True}
    started = time.perf_counter()
    first_token: float | None = None
    tokens = 0
    final: dict[str, Any] = {}
    with client.stream("POST", "/ask", json=body) as resp:
        resp.raise_for_status()
        name = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                if name == "token":
                    tokens += 1
                    if first_token is None:
                        first_token = time.perf_counter() - started
                elif name == "final":
                    final = json.loads(line.split(":", 1)[1])
                name = None
    total = time.perf_counter() - started
    return {
        "question": question,
        "first_token_s": round(first_token, 4) if first_token is not None else None,
        "total_s": round(total, 4),
        "token_events": tokens,
        "fallback": final.get("fallback"),
        "fallback_reason": final.get("fallback_reason"),
        "abstained": final.get("abstained"),
        "answer_chars": len(final.get("answer", "")),
    }


def _timed_ask(client: httpx.Client, question: str) -> tuple[float, dict[str, Any]]:
    body = {"question": question, "corpus": "papers", "top_k": TOP_K}
    started = time.perf_counter()
    resp = client.post("/ask", json=body)
    elapsed = time.perf_counter() - started
    resp.raise_for_status()
    return elapsed, resp.json()


def run(*, quick: bool, repeats: int, max_tokens: int) -> dict[str, Any]:
    from services.cli.up import llm_child, wait_llm_ready

    questions = QUESTIONS[:4] if quick else QUESTIONS
    with_tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"rag-bench-llm-{os.getpid()}"
    with_tmp.mkdir(parents=True, exist_ok=True)
    child, url = llm_child("smollm2", threads=1, env=dict(os.environ), log=with_tmp / "llm.log")
    child.start()
    try:
        problem = wait_llm_ready(child, url)
        if problem:
            raise RuntimeError(problem)
        log(f"llama.cpp server (SmolLM2, 1 thread) at {url}")
        env = {
            "RAG_GENERATOR": "openai",
            "RAG_LLM_BASE_URL": f"{url}/v1",
            "RAG_LLM_MAX_TOKENS": str(max_tokens),
            "RAG_LLM_FIRST_TOKEN_TIMEOUT_S": "120",
            "RAG_LLM_TOTAL_TIMEOUT_S": "300",
        }

        def prepare(root: Path) -> None:
            (root / "papers").mkdir()
            for name in PAPERS:
                shutil.copy(PAPERS_DIR / name, root / "papers" / name)

        with deployment(workers=1, env=env, prepare=prepare) as dep:
            record = ingest(dep.client, dep.corpus_root / "papers", "papers", poll_s=0.5)
            log(f"ingested {record['chunks_indexed']} chunks in {record['wall_s']:.0f}s")
            load_before = loadavg()
            streamed = []
            for q in questions:
                streamed.append(_stream_ask(dep.client, q))
                log(f"  streamed: first token {streamed[-1]['first_token_s']}s, "
                    f"total {streamed[-1]['total_s']}s")
            uncached, cached = [], []
            for q in questions:
                elapsed, answer = _timed_ask(dep.client, q)
                if answer["cache_info"]["answer_hit"]:
                    raise RuntimeError(f"expected a miss for {q!r}")
                uncached.append(elapsed)
                for _ in range(repeats):
                    elapsed, answer = _timed_ask(dep.client, q)
                    if not answer["cache_info"]["answer_hit"] and not answer["fallback"]:
                        raise RuntimeError(f"expected an answer hit for {q!r}")
                    cached.append(elapsed)
            load_after = loadavg()
    finally:
        child.stop()
        shutil.rmtree(with_tmp, ignore_errors=True)
    first = [s["first_token_s"] for s in streamed if s["first_token_s"] is not None]
    fallbacks = [s for s in streamed if s["fallback"]]
    return {
        "setup": {
            "model": "SmolLM2-135M-Instruct Q4_1 (llama.cpp via xllamacpp)",
            "llm_threads": 1,
            "max_tokens": max_tokens,
            "top_k": TOP_K,
            "papers": list(PAPERS),
            "chunks": record["chunks_indexed"],
            "questions": len(questions),
            "cached_repeats_per_question": repeats,
        },
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "streamed": {
            "first_token": percentiles_ms(first) if first else None,
            "total": percentiles_ms([s["total_s"] for s in streamed]),
            "fallbacks": len(fallbacks),
            "fallback_reasons": sorted({str(s["fallback_reason"]) for s in fallbacks}),
            "per_question": streamed,
        },
        "uncached": percentiles_ms(uncached),
        "cached": percentiles_ms(cached),
        "uncached_over_cached_p50": round(
            percentiles_ms(uncached)["p50_ms"] / max(1e-9, percentiles_ms(cached)["p50_ms"]), 1
        ),
    }


def summary_lines(r: dict[str, Any]) -> str:
    s = r["streamed"]
    first = s["first_token"]["p50_ms"] if s["first_token"] else None
    return (
        f"generation ({r['setup']['questions']} questions, SmolLM2 1 thread, "
        f"{r['setup']['max_tokens']} tokens): first token p50 {first} ms, total p50 "
        f"{s['total']['p50_ms']} ms, {s['fallbacks']} fallbacks; /ask uncached p50 "
        f"{r['uncached']['p50_ms']} ms vs cached p50 {r['cached']['p50_ms']} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 questions instead of 10")
    parser.add_argument("--repeats", type=int, default=20, help="cached asks per question")
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args(argv)
    report = run(quick=args.quick, repeats=args.repeats, max_tokens=args.max_tokens)
    write_result(NAME, report)
    print(summary_lines(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
