"""Tune BM25, dense and hybrid retrieval on SciFact's train split, offline and fast.

Run: `python bench/tune_scifact.py [SCIFACT_DIR] [--grid all|fusion|none] [--dense title|text]
[--ideas] [--max-tokens 128] [--context-tokens 36] [--threads N]`. Writes
bench/results/tune_scifact.json (with `--dense text`: tune_scifact_dense_text.json; with
`--ideas`: tune_scifact_ideas.json, see bench/scifact_ideas.py) and prints one line per
variant to stderr. `--grid none` scores what the service runs with its default settings, and
nothing else.

What the service computes, reproduced without HTTP: corpus.jsonl read by `iter_jsonl`, chunked
by `Chunker` (RAG_CHUNK_* settings), each chunk embedded as the ingest stage does (the title cut
to fit, then the text: `Chunker.titled`; `--dense text`, the chunk text alone, as chunking
signature v1 did) by `Embedder` in batches of 32 (cached under the temp dir, so the corpus is
embedded once) and BM25-encoded as title + "\n" + chunk text with its lexical context
(`Chunk.lexical_text`, RAG_CHUNK_LEXICAL_CONTEXT_TOKENS) by `Bm25Encoder`; the points go
into a real `EdgeStore` (sparse search with IDF over live points, dense cosine by brute force:
exact, where the service's HNSW index, built for corpora of RAG_QDRANT_OPTIMIZE_MIN_CHUNKS and
more, recalls 0.9997 of its top 10 at this size, bench/hnsw_recall.py). Rankings then
follow `Retriever._search_uncached` (`shared.search.retriever.ranked_hits`): at `top_k`
results, each mode searches `max(top_k, candidates)` deep in hybrid mode, `top_k` deep alone,
and ranks with `shared.search.ranking.rank` (the query's BM25 term count picks the dense
weight). Chunk rankings become document rankings by best chunk and are scored with ranx
(`shared.search.evaluation`), at the top_k `rag eval` asks for; `rag eval` through the live
service gives the same figures before its HNSW index is built (after: train nDCG@10 0.7459
against 0.7464 exact, the same chunks and lists with the shipped M, ef_construct and ef).

The report: the shipped defaults' table, the defaults before tuning, a coordinate ascent over
the BM25 settings (and where the title goes), a grid over fusion, candidates and weights, and
paired t-tests (ranx) of the choices that matter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.settings import ChunkingSettings  # noqa: E402
from shared.vectors.bm25 import Bm25Encoder  # noqa: E402
from shared.vectors.store.base import ChunkPoint, StoredHit  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "scifact"
RESULTS = REPO / "bench" / "results" / "tune_scifact.json"
CACHE = Path(tempfile.gettempdir()) / "rag-tune-scifact"


@dataclass(frozen=True, slots=True)
class CorpusChunk:
    external_id: str
    title: str
    index: int
    text: str
    dense: str  # what is embedded: the text, or the title (cut to fit) and the text
    lexical: str  # what BM25 reads, before the title: the text with its lexical context


# ---- corpus, chunks and embeddings (cached) --------------------------------------------------


def corpus_chunks(
    data: Path,
    *,
    max_tokens: int,
    overlap_tokens: int,
    context_tokens: int,
    dense_title: bool = True,
) -> list[CorpusChunk]:
    """Every chunk of corpus.jsonl, as the parse stage makes them, with what it embeds
    (`dense_title`: the title and the text, by `Chunker.titled`, as the service does) and
    what BM25 reads (the text with `context_tokens` of lexical context, `Chunk.lexical_text`)."""
    from shared.chunking import Chunker
    from shared.parsing import iter_jsonl
    from shared.vectors.embedding import default_model_path

    chunker = Chunker.from_model_path(
        default_model_path(), max_tokens=max_tokens, overlap_tokens=overlap_tokens,
        context_tokens=context_tokens,
    )
    chunks: list[CorpusChunk] = []
    for doc in iter_jsonl(data / "corpus.jsonl"):
        assert doc.external_id is not None
        for chunk in chunker.chunk(doc):
            dense = (
                chunker.titled(doc.title, chunk.text, n_tokens=chunk.n_tokens)
                if dense_title
                else chunk.text
            )
            chunks.append(CorpusChunk(doc.external_id, doc.title, chunk.index, chunk.text, dense,
                                      chunk.lexical_text))
    return chunks


def _digest(texts: Sequence[str], model_id: str) -> str:
    h = hashlib.sha256(model_id.encode())
    for text in texts:
        h.update(b"\0" + text.encode())
    return h.hexdigest()[:16]


def cache_path(texts: Sequence[str], *, label: str) -> Path:
    """Where the embeddings of exactly `texts` by the current model are cached."""
    from shared.vectors.embedding import default_model_path, model_identity

    model_id = model_identity(default_model_path())
    return CACHE / f"{label}-{_digest(texts, model_id)}.npy"


def embeddings(texts: Sequence[str], *, label: str, threads: int) -> np.ndarray:
    """Embeddings of `texts` by the service's Embedder, cached in a .npy keyed by their digest."""
    path = cache_path(texts, label=label)
    if path.exists():
        return np.load(path)
    from shared.vectors.embedding import Embedder

    embedder = Embedder(threads=threads, batch_size=32)
    started = time.monotonic()
    parts = []
    # Batches of 32 texts, as embed tasks receive them, so padding matches the service's.
    for start in range(0, len(texts), 32):
        parts.append(embedder.encode(texts[start : start + 32]))
        if (start // 32) % 20 == 0:
            print(f"  embedded {start + 32}/{len(texts)} {label} "
                  f"({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    print(f"  {label}: {len(texts)} texts embedded in {time.monotonic() - started:.0f}s",
          file=sys.stderr, flush=True)
    return vectors


# ---- the service's retrieval, in process --------------------------------------------------


@dataclass(frozen=True, slots=True)
class LexicalVariant:
    """How chunks and queries become BM25 vectors (Bm25Settings plus where the title goes)."""

    k1: float = 1.2
    b: float = 0.75
    avg_len: float = 150
    stemmer: str | None = "english"
    stopwords: bool = True
    title: str = "every"  # "every" chunk, "first" chunk only, or "none"

    def encoder(self) -> Bm25Encoder:
        return Bm25Encoder(k1=self.k1, b=self.b, avg_len=self.avg_len, stemmer=self.stemmer,
                           stopwords=self.stopwords)

    def lexical_text(self, chunk: CorpusChunk) -> str:
        with_title = self.title == "every" or (self.title == "first" and chunk.index == 0)
        return f"{chunk.title}\n{chunk.lexical}" if with_title and chunk.title else chunk.lexical


@dataclass(frozen=True, slots=True)
class Fusion:
    kind: str = "rrf"  # "rrf" or "convex" (shared.search.ranking)
    rrf_k: int = 60
    dense_weight: float = 0.5
    candidates: int = 100
    by_document: bool = False  # convex only: each document's best chunk scores for it
    short_query_terms: int = 0  # queries of at most this many BM25 terms ...
    short_query_dense_weight: float = 0.5  # ... fuse with this dense weight

    def label(self) -> str:
        if self.kind == "rrf":
            return f"rrf k={self.rrf_k} c={self.candidates}"
        unit = "doc" if self.by_document else "chunk"
        extra = ""
        if self.short_query_terms:
            extra += f" (w={self.short_query_dense_weight} if terms<={self.short_query_terms})"
        return f"convex w={self.dense_weight} c={self.candidates} {unit}{extra}"

    def policy(self) -> Any:
        """The same, as `shared.search.ranking.Fusion`."""
        from shared.search import ranking

        return ranking.Fusion(
            kind=self.kind, rrf_k=self.rrf_k, dense_weight=self.dense_weight,
            candidates=self.candidates, by_document=self.by_document,
            short_query_terms=self.short_query_terms,
            short_query_dense_weight=self.short_query_dense_weight,
        )


class Bench:
    """Chunks in real EdgeStores (one per lexical variant), queried the way /search does."""

    def __init__(
        self,
        *,
        chunks: list[CorpusChunk],
        vectors: np.ndarray,
        queries: dict[str, str],
        query_vectors: np.ndarray,
        workdir: Path,
        depth: int,
        keep_stores: bool = False,
    ) -> None:
        self.chunks = chunks
        self.keep_stores = keep_stores  # open for second-round searches (the ideas)
        self.vectors = vectors
        self.queries = queries
        self.query_vectors = dict(zip(queries, query_vectors, strict=True))
        self.workdir = workdir
        self.depth = depth  # hits fetched once per query and mode; shallower lists are prefixes
        self._dense: dict[str, list[StoredHit]] | None = None
        self._sparse: dict[LexicalVariant, dict[str, list[StoredHit]]] = {}
        self.stores: dict[LexicalVariant, Any] = {}  # with keep_stores

    def _store(self, variant: LexicalVariant) -> Any:
        return edge_store(self.workdir / f"store-{len(self._sparse)}", self.chunks, self.vectors,
                          variant)

    def sparse(self, variant: LexicalVariant) -> dict[str, list[StoredHit]]:
        if variant not in self._sparse:
            store = self._store(variant)
            encoder = variant.encoder()
            self._sparse[variant] = {
                qid: store.search_sparse("scifact", encoder.encode_query(text), limit=self.depth)
                for qid, text in self.queries.items()
            }
            if self._dense is None:
                self._dense = {
                    qid: store.search_dense("scifact", self.query_vectors[qid].tolist(),
                                            limit=self.depth)
                    for qid in self.queries
                }
            if self.keep_stores:
                self.stores[variant] = store
            else:
                store.close()
        return self._sparse[variant]

    def close(self) -> None:
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    def dense(self) -> dict[str, list[StoredHit]]:
        if self._dense is None:
            self.sparse(LexicalVariant())
        assert self._dense is not None
        return self._dense

    def ranked(
        self, mode: str, *, variant: LexicalVariant, fusion: Fusion, top_k: int
    ) -> dict[str, list[StoredHit]]:
        """Per query, the chunks /search returns: the same `shared.search.ranking.rank`."""
        from shared.search import ranking

        policy = fusion.policy()
        depth = policy.depth(mode, top_k)
        if mode == "hybrid" and depth > self.depth:
            raise ValueError(f"depth {depth} is over the fetched {self.depth}")
        dense_all, sparse_all = self.dense(), self.sparse(variant)
        encoder = variant.encoder()
        return {
            qid: [
                hit
                for hit, _ in ranking.rank(
                    mode, dense_all[qid][:depth], sparse_all[qid][:depth], fusion=policy,
                    top_k=top_k, query_terms=len(encoder.encode_query(text).indices),
                )
            ]
            for qid, text in self.queries.items()
        }


def edge_store(
    path: Path, chunks: Sequence[CorpusChunk], vectors: np.ndarray, variant: LexicalVariant
) -> Any:
    """A real EdgeStore at `path` holding every chunk (corpus "scifact"), as the index stage
    writes it: the chunk's vector, the BM25 vector of title + text, and its ids."""
    from shared.vectors.store.edge import EdgeStore

    store = EdgeStore(path)
    store.ensure_corpus("scifact", dim=vectors.shape[1])
    encoder = variant.encoder()
    points = [
        ChunkPoint(
            id=_uuid(f"{c.external_id}/{c.index}"),
            dense=vector.tolist(),
            sparse=encoder.encode_document(variant.lexical_text(c)),
            payload={"doc_id": c.external_id, "external_id": c.external_id,
                     "chunk_index": c.index},
        )
        for c, vector in zip(chunks, vectors, strict=True)
    ]
    for start in range(0, len(points), 256):
        store.upsert("scifact", points[start : start + 256])
    return store


def _uuid(key: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def run_of(
    bench: Bench, mode: str, *, variant: LexicalVariant, fusion: Fusion, top_k: int
) -> dict[str, dict[str, float]]:
    """The document run of one mode: each query's documents, by best chunk."""
    from shared.search.evaluation import document_ranking, document_run

    ranked = bench.ranked(mode, variant=variant, fusion=fusion, top_k=top_k)
    return document_run(
        {qid: document_ranking(h.payload for h in hits) for qid, hits in ranked.items()}
    )


def score(
    bench: Bench, qrels: dict[str, dict[str, int]], mode: str, *, variant: LexicalVariant,
    fusion: Fusion, top_k: int,
) -> dict[str, float]:
    from shared.search.evaluation import evaluate_runs

    run = run_of(bench, mode, variant=variant, fusion=fusion, top_k=top_k)
    metrics = evaluate_runs(qrels, {mode: run})[mode]
    return {k: round(v, 4) for k, v in metrics.items()}


def paired_test(
    qrels: dict[str, dict[str, int]], a: dict[str, dict[str, float]],
    b: dict[str, dict[str, float]],
) -> dict[str, Any]:
    """nDCG@10 of two runs over the same queries: means, wins/ties/losses, two-sided t-test p."""
    from ranx import Qrels, Run, compare

    runs = [Run({q: dict(a.get(q, {})) for q in qrels}, name="a"),
            Run({q: dict(b.get(q, {})) for q in qrels}, name="b")]
    report = compare(Qrels(qrels), runs, metrics=["ndcg@10"], stat_test="student",
                     make_comparable=True).to_dict()
    wtl = report["a"]["win_tie_loss"]["b"]["ndcg@10"]
    return {
        "a": round(report["a"]["scores"]["ndcg@10"], 4),
        "b": round(report["b"]["scores"]["ndcg@10"], 4),
        "win_tie_loss": [wtl["W"], wtl["T"], wtl["L"]],
        "p": float(f"{float(report['a']['comparisons']['b']['ndcg@10']):.3g}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", default="train")
    defaults = ChunkingSettings()
    parser.add_argument("--max-tokens", type=int, default=defaults.max_tokens)
    parser.add_argument("--overlap-tokens", type=int, default=defaults.overlap_tokens)
    parser.add_argument("--context-tokens", type=int, default=defaults.lexical_context_tokens)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--embed-only", action="store_true")
    parser.add_argument(
        "--dense", choices=("title", "text"), default="title",
        help="What each chunk's vector embeds: its title (cut to fit) and text, as the service "
        "does, or its text alone (chunking signature v1).",
    )
    parser.add_argument(
        "--grid", choices=("all", "fusion", "none"), default="all",
        help="Variants to try: lexical and fusion, fusion only, or none (shipped defaults).",
    )
    parser.add_argument(
        "--ideas", action="store_true",
        help="Measure the retrieval ideas of bench/scifact_ideas.py (both --dense kinds) and "
        "write bench/results/tune_scifact_ideas.json instead.",
    )
    args = parser.parse_args()
    if args.ideas:
        return ideas_main(args)
    from shared.search.evaluation import DEFAULT_TOP_K, load_beir

    timings: dict[str, float] = {}
    started = time.monotonic()
    chunks = corpus_chunks(args.data, max_tokens=args.max_tokens,
                           overlap_tokens=args.overlap_tokens, context_tokens=args.context_tokens,
                           dense_title=args.dense == "title")
    timings["chunking_s"] = round(time.monotonic() - started, 1)
    print(f"{len(chunks)} chunks in {timings['chunking_s']}s", file=sys.stderr)
    t = time.monotonic()
    vectors = embeddings(
        [c.dense for c in chunks],
        label=f"chunks{args.max_tokens}{'-title' if args.dense == 'title' else ''}",
        threads=args.threads,
    )
    timings["chunk_embeddings_s"] = round(time.monotonic() - t, 1)
    if args.embed_only:
        return
    dataset = load_beir(args.data, split=args.split)
    t = time.monotonic()
    query_vectors = embeddings(list(dataset.queries.values()), label=f"queries-{args.split}",
                               threads=args.threads)
    timings["query_embeddings_s"] = round(time.monotonic() - t, 1)
    print(f"{len(dataset.queries)} judged {args.split} queries", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="tune-scifact-") as workdir:
        bench = Bench(chunks=chunks, vectors=vectors, queries=dataset.queries,
                      query_vectors=query_vectors, workdir=Path(workdir), depth=1000)
        t = time.monotonic()
        report = run_variants(bench, dataset.qrels, top_k=DEFAULT_TOP_K, grid=args.grid)
        timings["variants_s"] = round(time.monotonic() - t, 1)
    report.update(
        split=args.split,
        queries=len(dataset.queries),
        documents=len({c.external_id for c in chunks}),
        chunks=len(chunks),
        chunking={"max_tokens": args.max_tokens, "overlap_tokens": args.overlap_tokens,
                  "lexical_context_tokens": args.context_tokens},
        dense_text="title + chunk text" if args.dense == "title" else "chunk text",
        top_k=DEFAULT_TOP_K,
        timings=timings,
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    shipped_chunking = (args.max_tokens, args.context_tokens) == (
        defaults.max_tokens, defaults.lexical_context_tokens)
    suffix = ("" if shipped_chunking else f"_chunk{args.max_tokens}_ctx{args.context_tokens}") + (
        "_dense_text" if args.dense == "text" else "")
    out = RESULTS.with_stem(RESULTS.stem + suffix)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["shipped"], indent=2))
    print(f"wrote {out}", file=sys.stderr)


def ideas_main(args: argparse.Namespace) -> None:
    """Both kinds of chunk vectors in EdgeStores, the first-pass lists, then every idea."""
    from bench.scifact_ideas import IdeaBench, run_ideas, summary
    from shared.search.evaluation import DEFAULT_TOP_K, load_beir

    started = time.monotonic()
    text_chunks = corpus_chunks(args.data, max_tokens=args.max_tokens,
                                overlap_tokens=args.overlap_tokens,
                                context_tokens=args.context_tokens, dense_title=False)
    chunks = corpus_chunks(args.data, max_tokens=args.max_tokens,
                           overlap_tokens=args.overlap_tokens,
                           context_tokens=args.context_tokens, dense_title=True)
    label = f"chunks{args.max_tokens}"
    # Text-only vectors are for the dense_title comparison alone: skipped unless cached or
    # asked for with --dense text.
    text_texts = [c.dense for c in text_chunks]
    with_text = args.dense == "text" or cache_path(text_texts, label=label).exists()
    text_vectors = embeddings(text_texts, label=label, threads=args.threads) if with_text else None
    vectors = embeddings([c.dense for c in chunks], label=f"{label}-title", threads=args.threads)
    dataset = load_beir(args.data, split=args.split)
    query_vectors = embeddings(list(dataset.queries.values()), label=f"queries-{args.split}",
                               threads=args.threads)
    lexical, fusion = shipped()
    with tempfile.TemporaryDirectory(prefix="tune-scifact-") as workdir:
        common: dict[str, Any] = {"queries": dataset.queries, "query_vectors": query_vectors,
                                  "depth": 1000, "keep_stores": True}
        titled = Bench(chunks=chunks, vectors=vectors, workdir=Path(workdir) / "title", **common)
        text = None if text_vectors is None else Bench(
            chunks=text_chunks, vectors=text_vectors, workdir=Path(workdir) / "text", **common)
        try:
            sparse = titled.sparse(lexical)
            idea_bench = IdeaBench(
                chunks=chunks, vectors=vectors, queries=dataset.queries,
                query_vectors=titled.query_vectors, qrels=dataset.qrels,
                dense=titled.dense(), dense_text=None if text is None else text.dense(),
                sparse=sparse,
                store=titled.stores[lexical], encoder=lexical.encoder(),
                fusion=fusion.policy(), top_k=DEFAULT_TOP_K, lexical_text=lexical.lexical_text,
            )
            print(f"first pass ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
            report = run_ideas(idea_bench)
        finally:
            titled.close()
            if text is not None:
                text.close()
    report.update(split=args.split, queries=len(dataset.queries),
                  documents=len({c.external_id for c in chunks}), chunks=len(chunks),
                  top_k=DEFAULT_TOP_K, lexical=_settings(lexical), fusion=fusion.label(),
                  seconds=round(time.monotonic() - started, 1))
    out = RESULTS.with_stem(RESULTS.stem + "_ideas")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(summary(report))
    print(f"wrote {out}", file=sys.stderr)


def _log(kind: str, label: str, metrics: dict[str, float]) -> None:
    print(f"{kind:<7} {label:<60} " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
          file=sys.stderr, flush=True)


# Coordinate ascent over the lexical settings, in this order, from the old defaults.
LEXICAL_GRID: list[tuple[str, list[Any]]] = [
    ("stemmer", ["english", "porter", None]),
    ("stopwords", [True, False]),
    ("k1", [0.6, 0.9, 1.2, 1.5, 2.0]),
    ("b", [0.3, 0.5, 0.75, 0.9, 1.0]),
    ("avg_len", [75, 100, 150, 200, 300]),
    ("title", ["every", "first", "none"]),
]
RRF_KS = [1, 2, 5, 10, 20, 30, 60, 100]
DENSE_WEIGHTS = [0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8]
CANDIDATES = [100, 300, 500, 1000]
USER_TOP_K = 50


def _key(metrics: dict[str, float]) -> tuple[float, float]:
    return metrics["ndcg@10"], metrics["recall@100"]


def shipped() -> tuple[LexicalVariant, Fusion]:
    """What the service runs with the defaults in shared/settings.py."""
    from shared.search.retriever import fusion_of
    from shared.settings import Bm25Settings, RetrievalSettings

    b, r = Bm25Settings(), RetrievalSettings()
    # The service's convex fusion is by document (shared.search.ranking.Fusion's default).
    fusion = Fusion(kind=r.fusion, rrf_k=r.rrf_k, dense_weight=r.dense_weight,
                    candidates=r.candidates, by_document=r.fusion == "convex",
                    short_query_terms=r.short_query_terms,
                    short_query_dense_weight=r.short_query_dense_weight)
    if r.fusion == "convex" and fusion.policy() != fusion_of(r):
        raise AssertionError(f"the bench's {fusion.policy()} is not the service's {fusion_of(r)}")
    lexical = LexicalVariant(k1=b.k1, b=b.b, avg_len=b.avg_len, stemmer=b.stemmer,
                             stopwords=b.stopwords)
    return lexical, fusion


def run_variants(
    bench: Bench, qrels: dict[str, dict[str, int]], *, top_k: int, grid: str
) -> dict[str, Any]:
    """`grid`: "all" (lexical then fusion), "fusion" (fusion only) or "none" (defaults only)."""
    shipped_lexical, shipped_fusion = shipped()
    before_lexical, before_fusion = LexicalVariant(), Fusion()  # the defaults before tuning
    lexical_rows: list[dict[str, Any]] = []

    def lexical(variant: LexicalVariant) -> dict[str, float]:
        t = time.monotonic()
        metrics = score(bench, qrels, "bm25", variant=variant, fusion=shipped_fusion, top_k=top_k)
        lexical_rows.append({"settings": _settings(variant), "metrics": metrics,
                             "seconds": round(time.monotonic() - t, 1)})
        _log("bm25", str(_settings(variant)), metrics)
        return metrics

    best_lexical, best_metrics = before_lexical, lexical(before_lexical)
    if grid == "all":
        for name, values in LEXICAL_GRID:
            for value in values:
                if getattr(best_lexical, name) == value:
                    continue
                candidate = _replace(best_lexical, **{name: value})
                metrics = lexical(candidate)
                if _key(metrics) > _key(best_metrics):
                    best_lexical, best_metrics = candidate, metrics
    if shipped_lexical not in {LexicalVariant(**row["settings"]) for row in lexical_rows}:
        lexical(shipped_lexical)

    fusion_rows: list[dict[str, Any]] = []

    def hybrid(fusion: Fusion, variant: LexicalVariant = shipped_lexical) -> dict[str, float]:
        metrics = score(bench, qrels, "hybrid", variant=variant, fusion=fusion, top_k=top_k)
        # A user asking for a few results gets a fusion only `candidates` deep (top_k 300 makes
        # it at least 300 deep): 50 chunks still name ten documents, at that depth.
        few = score(bench, qrels, "hybrid", variant=variant, fusion=fusion, top_k=USER_TOP_K)
        row = {"fusion": fusion.label(), "lexical": _settings(variant), "metrics": metrics,
               f"top_k_{USER_TOP_K}": {k: few[k] for k in ("ndcg@10", "mrr@10")}}
        fusion_rows.append(row)
        _log("hybrid", fusion.label() + ("" if variant == shipped_lexical else " (lex*)"), metrics)
        return metrics

    fusions = [shipped_fusion, before_fusion]
    if grid in ("all", "fusion"):
        fusions += [Fusion(kind="rrf", rrf_k=k, candidates=c) for k in RRF_KS for c in CANDIDATES]
        fusions += [Fusion(kind="convex", dense_weight=w, candidates=c, by_document=by_doc)
                    for by_doc in (False, True) for w in DENSE_WEIGHTS for c in CANDIDATES]
    best_fusion, best_hybrid = shipped_fusion, hybrid(shipped_fusion)
    for fusion in dict.fromkeys(fusions[1:]):
        if fusion == shipped_fusion:
            continue
        metrics = hybrid(fusion)
        if _key(metrics) > _key(best_hybrid):
            best_fusion, best_hybrid = fusion, metrics
    if grid == "all":
        # Does the lexical winner for BM25 alone also make the best hybrid? The runners-up say.
        ranked = sorted(lexical_rows, key=lambda x: _key(x["metrics"]), reverse=True)
        for row in ranked[:4]:
            if LexicalVariant(**row["settings"]) != shipped_lexical:
                hybrid(shipped_fusion, LexicalVariant(**row["settings"]))

    def run(mode: str, variant: LexicalVariant, fusion: Fusion) -> dict[str, dict[str, float]]:
        return run_of(bench, mode, variant=variant, fusion=fusion, top_k=top_k)

    modes = ("bm25", "dense", "hybrid")
    ship = {mode: run(mode, shipped_lexical, shipped_fusion) for mode in modes}
    table = {mode: score(bench, qrels, mode, variant=shipped_lexical, fusion=shipped_fusion,
                         top_k=top_k) for mode in modes}
    before = {mode: score(bench, qrels, mode, variant=before_lexical, fusion=before_fusion,
                          top_k=top_k) for mode in ("bm25", "hybrid")}
    chunk_fusion = _replace_fusion(shipped_fusion, by_document=False)
    significance = {
        "bm25 shipped vs before": paired_test(
            qrels, ship["bm25"], run("bm25", before_lexical, before_fusion)),
        "hybrid shipped vs before": paired_test(
            qrels, ship["hybrid"], run("hybrid", before_lexical, before_fusion)),
        "hybrid vs bm25": paired_test(qrels, ship["hybrid"], ship["bm25"]),
        "hybrid vs dense": paired_test(qrels, ship["hybrid"], ship["dense"]),
        "hybrid by document vs by chunk": paired_test(
            qrels, ship["hybrid"], run("hybrid", shipped_lexical, chunk_fusion)),
    }
    for name, test in significance.items():
        print(f"paired  {name:<40} {test}", file=sys.stderr)
    return {
        "shipped": {
            "lexical": _settings(shipped_lexical),
            "fusion": shipped_fusion.label(),
            **table,
        },
        "before": {
            "lexical": _settings(before_lexical),
            "fusion": before_fusion.label(),
            **before,
        },
        "best_measured": {
            "lexical": {"settings": _settings(best_lexical), "bm25": best_metrics},
            "fusion": {"fusion": best_fusion.label(), "hybrid": best_hybrid},
        },
        "significance": significance,
        "lexical_variants": lexical_rows,
        "fusion_variants": fusion_rows,
    }


def _replace_fusion(fusion: Fusion, **changes: Any) -> Fusion:
    from dataclasses import replace

    return replace(fusion, **changes)


def _replace(variant: LexicalVariant, **changes: Any) -> LexicalVariant:
    from dataclasses import replace

    return replace(variant, **changes)


def _settings(variant: LexicalVariant) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(variant)


if __name__ == "__main__":
    main()
