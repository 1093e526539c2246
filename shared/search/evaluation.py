"""Retrieval quality on a BEIR dataset: judged queries in, nDCG@10, Recall@100 and MRR@10 out.

Pure logic: reading a BEIR folder, turning ranked chunks into a ranking of documents (a
document ranks by its best chunk), and scoring those rankings with ranx. Running the queries
is the caller's business (`rag eval` goes through the API, bench/tune_scifact.py in process).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

METRICS = ("ndcg@10", "recall@100", "mrr@10")
# Chunks asked of /search per query: with two or three chunks per abstract, 300 chunks still
# name well over the 100 documents Recall@100 looks at.
DEFAULT_TOP_K = 300

Qrels = dict[str, dict[str, int]]  # query id -> document external_id -> relevance
DocumentRun = dict[str, dict[str, float]]  # query id -> document external_id -> score


class DatasetError(ValueError):
    """A BEIR folder that cannot be evaluated: names the file and what is wrong with it."""


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """The judged part of one split of a BEIR dataset."""

    root: Path
    split: str
    queries: dict[str, str]  # query id -> text, only queries with a relevant document
    qrels: Qrels

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"

    @property
    def name(self) -> str:
        return self.root.name


def load_beir(root: Path | str, *, split: str) -> BeirDataset:
    """Read `corpus.jsonl` (its presence), `queries.jsonl` and `qrels/<split>.tsv` under `root`.

    Only queries with at least one relevant (score > 0) judgment are kept. A query's
    `metadata` is never read: in some datasets (SciFact) it carries the answer.
    """
    root = Path(root).resolve()
    corpus = root / "corpus.jsonl"
    queries_path = root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for path in (corpus, queries_path):
        if not path.is_file():
            raise DatasetError(f"{path}: not found; a BEIR dataset folder holds corpus.jsonl, "
                               "queries.jsonl and qrels/<split>.tsv")
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (root / "qrels").glob("*.tsv"))
        raise DatasetError(
            f"{qrels_path}: not found; splits here: {', '.join(available) or 'none'}"
        )
    qrels = read_qrels(qrels_path)
    texts = read_queries(queries_path, wanted=set(qrels))
    missing = sorted(set(qrels) - set(texts))
    if missing:
        raise DatasetError(
            f"{qrels_path}: {len(missing)} judged queries are not in queries.jsonl "
            f"(first: {missing[0]!r})"
        )
    return BeirDataset(root=root, split=split, queries=texts, qrels=qrels)


def read_qrels(path: Path) -> Qrels:
    """query id -> {document id: relevance} of the positive judgments of a BEIR qrels TSV."""
    qrels: Qrels = {}
    with path.open(newline="", encoding="utf-8") as file:
        for number, row in enumerate(csv.reader(file, delimiter="\t"), start=1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            if len(row) != 3:
                raise DatasetError(f"{path}, line {number}: expected query-id, corpus-id, score")
            query_id, doc_id, score = row
            try:
                relevance = int(score)
            except ValueError:
                raise DatasetError(f"{path}, line {number}: score {score!r} is not an integer")
            if relevance > 0:
                qrels.setdefault(query_id, {})[doc_id] = relevance
    return qrels


def read_queries(path: Path, *, wanted: set[str]) -> dict[str, str]:
    """The text of each query in `wanted`, by id (fields other than `_id` and `text` unread)."""
    texts: dict[str, str] = {}
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                query_id, text = str(record["_id"]), record["text"]
            except (ValueError, KeyError, TypeError):
                raise DatasetError(f"{path}, line {number}: expected {{\"_id\", \"text\"}}")
            if query_id in wanted:
                if not isinstance(text, str) or not text.strip():
                    raise DatasetError(f"{path}, line {number}: query {query_id!r} has no text")
                texts[query_id] = text
    return texts


def document_ranking(results: Iterable[Mapping[str, Any]]) -> list[str]:
    """The documents of ranked chunk results, each at the rank of its best (first) chunk.

    A document is its `external_id`; chunks without one (not from a JSONL corpus) are
    skipped, since no judgment can name them.
    """
    ranking: dict[str, None] = {}
    for result in results:
        external_id = result.get("external_id")
        if external_id is not None:
            ranking.setdefault(str(external_id), None)
    return list(ranking)


def document_run(rankings: Mapping[str, Sequence[str]]) -> DocumentRun:
    """Rankings as ranx runs: scores that fall with rank, so ties keep the ranked order."""
    return {
        query_id: {doc: float(len(docs) - rank) for rank, doc in enumerate(docs)}
        for query_id, docs in rankings.items()
    }


def evaluate_runs(
    qrels: Qrels, runs: Mapping[str, DocumentRun], *, metrics: Sequence[str] = METRICS
) -> dict[str, dict[str, float]]:
    """Mean of each metric over the judged queries, per run (a query with no results scores 0).

    Computed by ranx (trec_eval definitions; nDCG with linear gains).
    """
    from ranx import Qrels as RanxQrels
    from ranx import Run, evaluate

    if not qrels:
        raise DatasetError("no judged queries to evaluate")
    judged = RanxQrels(qrels)
    scores: dict[str, dict[str, float]] = {}
    for name, run in runs.items():
        # Every judged query is in the run, empty if nothing came back, and nothing else is.
        complete = {query_id: dict(run.get(query_id, {})) for query_id in qrels}
        if not any(complete.values()):  # ranx cannot size an entirely empty run
            scores[name] = dict.fromkeys(metrics, 0.0)
            continue
        result = evaluate(judged, Run(complete), list(metrics), make_comparable=True)
        values = result if isinstance(result, dict) else {metrics[0]: result}
        scores[name] = {metric: float(values[metric]) for metric in metrics}
    return scores
