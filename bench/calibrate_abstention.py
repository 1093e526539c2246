"""Calibrate the generation library's two thresholds on SciFact, offline, in a few minutes.

Run: `python bench/calibrate_abstention.py [--scifact DIR] [--queries 300] [--docs 400]`.
Prints and writes bench/results/calibrate_abstention.json. The cost is embedding the sample's
~960 chunks: about 1.5 CPU-minutes (it took 10 minutes of wall time on a shared 2-core machine
at load average 15-20). The figures it gave are in the docstrings of
shared/generation/abstention.py and grounding.py.

1. Abstention (`shared.generation.abstention.ABSTAIN_MIN_SCORE`). A sample of SciFact train
   claims and their gold abstracts, padded with random other abstracts, is chunked and
   embedded as the service does (`Chunker` with RAG_CHUNK_* defaults, `Embedder`, MiniLM).
   For each question the signal is the best question-chunk cosine. Three groups:
   - answerable: the sampled claims (their gold abstracts are in the corpus);
   - off-topic: 40 everyday questions written for this script (OFF_TOPIC);
   - in-domain, unanswerable: other train claims whose gold abstracts were left out
     (reported only: a biomedical claim on a biomedical corpus is not off-topic).
   The threshold maximises (answerable kept) + (off-topic refused) while refusing at most 1%
   of answerable questions; of the thresholds that tie, the middle one.
2. Grounding (`shared.generation.grounding.SUPPORT_THRESHOLD`). The lexical support of each
   sampled claim in its gold abstract (supported) and in the most similar non-gold abstract
   of the corpus by dense score (unsupported); the threshold with the best balanced accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
RESULTS = REPO / "bench" / "results" / "calibrate_abstention.json"
MAX_FALSE_ABSTAIN = 0.01

OFF_TOPIC = [
    "What is the capital of France?",
    "Who won the football World Cup in 2018?",
    "How do I bake sourdough bread at home?",
    "What is the best way to learn to play the guitar?",
    "When was the Eiffel Tower built?",
    "How many moons does Jupiter have?",
    "What time does the last train to Berlin leave?",
    "Can you recommend a good science fiction novel?",
    "How do I fix a flat tyre on a bicycle?",
    "What is the exchange rate between the euro and the dollar?",
    "Who painted the Mona Lisa?",
    "How do I reverse a linked list in Python?",
    "What is the tallest mountain in Africa?",
    "Which wine goes well with grilled salmon?",
    "How long should I boil an egg for a soft yolk?",
    "What are the rules for castling in chess?",
    "Who wrote Pride and Prejudice?",
    "What is the population of Tokyo?",
    "How do I set up a home Wi-Fi router?",
    "What is the plot of the movie Inception?",
    "How do I write a cover letter for a job application?",
    "What is the weather like in Lisbon in October?",
    "Which programming language should I learn first?",
    "How do airplanes stay in the air?",
    "What is the difference between a violin and a viola?",
    "How do I remove a red wine stain from a carpet?",
    "Who is the current president of Brazil?",
    "How do I file my taxes online?",
    "What is the history of the Roman Colosseum?",
    "How do I train a puppy to sit?",
    "What are the lyrics of Bohemian Rhapsody?",
    "How many players are on a basketball team?",
    "What is the fastest way to get from London to Paris?",
    "How do I build a website with WordPress?",
    "What does a real estate agent do?",
    "Which planet is closest to the sun?",
    "How do I knit a scarf?",
    "What does the word serendipity mean?",
    "How much does a new electric car cost?",
    "What are the opening hours of the Louvre?",
]


def log(message: str) -> None:
    print(f"[calibrate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load(data: Path, *, n_queries: int, n_docs: int, seed: int) -> dict[str, Any]:
    queries = {}
    for line in (data / "queries.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        queries[record["_id"]] = record["text"]
    gold: dict[str, set[str]] = {}
    for line in list((data / "qrels" / "train.tsv").open(encoding="utf-8"))[1:]:
        query_id, doc_id, score = line.split("\t")
        if int(score) > 0:
            gold.setdefault(query_id, set()).add(doc_id)
    docs = {}
    for line in (data / "corpus.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        docs[record["_id"]] = (record.get("title") or "", record["text"])
    rng = random.Random(seed)
    train = sorted(q for q in gold if q in queries)
    rng.shuffle(train)
    answerable = train[:n_queries]
    kept = set().union(*(gold[q] for q in answerable))
    others = sorted(set(docs) - kept)
    rng.shuffle(others)
    kept |= set(others[: max(0, n_docs - len(kept))])
    unanswerable = [q for q in train[n_queries:] if not gold[q] & kept][:100]
    return {
        "queries": queries,
        "gold": gold,
        "docs": {d: docs[d] for d in sorted(kept)},
        "answerable": answerable,
        "unanswerable": unanswerable,
    }


def chunk_corpus(docs: dict[str, tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(doc id, what the index's vector embeds) of every chunk, as the parse and embed stages
    make them: the title, cut to fit, then the chunk's text (`Chunker.titled`)."""
    from shared.chunking import Chunker
    from shared.documents import Page, ParsedDocument
    from shared.settings import ChunkingSettings
    from shared.vectors.embedding import default_model_path

    s = ChunkingSettings()
    chunker = Chunker.from_model_path(
        default_model_path(), max_tokens=s.max_tokens, overlap_tokens=s.overlap_tokens
    )
    owners, texts = [], []
    for doc_id, (title, text) in docs.items():
        doc = ParsedDocument(title=title, format="jsonl-record", pages=[Page(number=1, text=text)])
        for chunk in chunker.chunk(doc):
            owners.append(doc_id)
            texts.append(chunker.titled(title, chunk.text, n_tokens=chunk.n_tokens))
    return owners, texts


def summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "n": int(a.size),
        "min": round(float(a.min()), 4),
        "p01": round(float(np.quantile(a, 0.01)), 4),
        "p05": round(float(np.quantile(a, 0.05)), 4),
        "median": round(float(np.median(a)), 4),
        "p95": round(float(np.quantile(a, 0.95)), 4),
        "max": round(float(a.max()), 4),
    }


def choose_abstain_threshold(answerable: list[float], off_topic: list[float]) -> dict[str, Any]:
    pos, neg = np.asarray(answerable), np.asarray(off_topic)
    rows = []
    for t in np.round(np.arange(0.0, 0.8, 0.01), 2):
        false_abstain = float((pos < t).mean())
        refused = float((neg < t).mean())
        rows.append((float(t), false_abstain, refused, (1 - false_abstain) + refused - 1))
    allowed = [r for r in rows if r[1] <= MAX_FALSE_ABSTAIN]
    best = max(r[3] for r in allowed)
    tied = [r for r in allowed if r[3] == best]
    chosen = tied[len(tied) // 2]
    return {
        "threshold": chosen[0],
        "false_abstain_rate": round(chosen[1], 4),
        "off_topic_refused_rate": round(chosen[2], 4),
        "tied_range": [tied[0][0], tied[-1][0]],
        "rule": f"max (kept + refused) with false abstentions <= {MAX_FALSE_ABSTAIN:.0%}; "
        "middle of the tied thresholds",
        "table": [
            {"t": r[0], "false_abstain": round(r[1], 4), "off_topic_refused": round(r[2], 4)}
            for r in rows
            if 0.2 <= r[0] <= 0.45
        ],
    }


def choose_support_threshold(supported: list[float], unsupported: list[float]) -> dict[str, Any]:
    pos, neg = np.asarray(supported), np.asarray(unsupported)
    rows = []
    for t in np.round(np.arange(0.05, 1.0, 0.05), 2):
        tpr, tnr = float((pos >= t).mean()), float((neg < t).mean())
        rows.append((float(t), tpr, tnr, (tpr + tnr) / 2))
    best = max(rows, key=lambda r: (r[3], -r[0]))
    return {
        "threshold": best[0],
        "supported_passing": round(best[1], 4),
        "unsupported_caught": round(best[2], 4),
        "balanced_accuracy": round(best[3], 4),
        "table": [
            {"t": r[0], "supported_passing": round(r[1], 3), "unsupported_caught": round(r[2], 3)}
            for r in rows
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scifact", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not (args.scifact / "corpus.jsonl").exists():
        raise SystemExit(f"SciFact not found under {args.scifact}: clone ../shared beside the repo")
    from shared.generation.grounding import support
    from shared.vectors.embedding import Embedder

    started = time.monotonic()
    data = load(args.scifact, n_queries=args.queries, n_docs=args.docs, seed=args.seed)
    owners, chunk_texts = chunk_corpus(data["docs"])
    log(
        f"{len(data['docs'])} abstracts, {len(chunk_texts)} chunks, "
        f"{len(data['answerable'])} answerable and {len(data['unanswerable'])} unanswerable claims"
    )
    embedder = Embedder(threads=args.threads, batch_size=32)
    chunks = embedder.encode(chunk_texts)
    log(f"chunks embedded ({time.monotonic() - started:.0f} s)")
    texts = {
        "answerable": [data["queries"][q] for q in data["answerable"]],
        "unanswerable_in_domain": [data["queries"][q] for q in data["unanswerable"]],
        "off_topic": OFF_TOPIC,
    }
    top: dict[str, list[float]] = {}
    best_other: list[str] = []
    for group, questions in texts.items():
        scores = embedder.encode(questions) @ chunks.T
        top[group] = [float(row.max()) for row in scores]
        if group == "answerable":
            for query_id, row in zip(data["answerable"], scores, strict=True):
                order = np.argsort(-row)
                best_other.append(
                    next(owners[i] for i in order if owners[i] not in data["gold"][query_id])
                )

    supported, unsupported = [], []
    for query_id, other in zip(data["answerable"], best_other, strict=True):
        claim = data["queries"][query_id]
        gold_texts = [
            " ".join(data["docs"][d]) for d in data["gold"][query_id] if d in data["docs"]
        ]
        supported.append(support(claim, gold_texts))
        unsupported.append(support(claim, [" ".join(data["docs"][other])]))

    report = {
        "data": {
            "abstracts": len(data["docs"]),
            "chunks": len(chunk_texts),
            "seed": args.seed,
            "model": embedder.model_id,
        },
        "top_cosine": {group: summary(values) for group, values in top.items()},
        "abstention": choose_abstain_threshold(top["answerable"], top["off_topic"]),
        "unanswerable_in_domain_refused_rate": None,
        "grounding_support": {
            "supported": summary(supported),
            "unsupported": summary(unsupported),
            **choose_support_threshold(supported, unsupported),
        },
        "off_topic_top_cosine": {
            q: round(s, 4) for q, s in zip(OFF_TOPIC, top["off_topic"], strict=True)
        },
        "seconds": round(time.monotonic() - started, 1),
    }
    t = report["abstention"]["threshold"]
    report["unanswerable_in_domain_refused_rate"] = round(
        float((np.asarray(top["unanswerable_in_domain"]) < t).mean()), 4
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    summary_view = {k: v for k, v in report.items() if k not in ("off_topic_top_cosine",)}
    summary_view["abstention"] = {k: v for k, v in report["abstention"].items() if k != "table"}
    summary_view["grounding_support"] = {
        k: v for k, v in report["grounding_support"].items() if k != "table"
    }
    print(json.dumps(summary_view, indent=2))
    log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
