"""`rag eval`: the running service's retrieval quality on a BEIR dataset, per search mode.

The corpus goes in through the normal ingestion path (API, workers, store) into a corpus of
its own, so a second run finds every record unchanged; every judged query then goes through
POST /search in each mode with the cache off. Scoring is `shared.search.evaluation`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from services.cli.client import ApiClient, ApiError, client_from_env

EVAL_MODES = ("bm25", "dense", "hybrid")
DEFAULT_CONCURRENCY = 4


class EvalError(Exception):
    """The evaluation cannot go on: says what failed and what to do."""


@dataclass(slots=True)
class EvalReport:
    corpus: str
    queries: int
    scores: dict[str, dict[str, float]]
    ingest: dict[str, Any]  # the ingestion job's final record
    ingest_s: float
    search_s: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """`{"bm25": {...}, "dense": {...}, "hybrid": {...}, "queries": N}`."""
        return {**{mode: self.scores[mode] for mode in EVAL_MODES}, "queries": self.queries}


def default_corpus_name(dataset_dir: Path) -> str:
    """`eval-<folder name>`, reduced to the characters a corpus name may hold."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(dataset_dir).resolve().name).strip("-_")
    return f"eval-{name or 'dataset'}"[:64]


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=console.quiet or not console.is_terminal,
        transient=False,
    )


def ingest_corpus(
    client: ApiClient, corpus_path: Path, *, corpus: str, progress: Progress
) -> dict[str, Any]:
    """Ingest `corpus_path` by path (or upload, if the server cannot read it); the final job."""
    path = corpus_path.resolve()
    try:
        job_id = client.start_ingest(str(path), corpus=corpus, sync=False, passwords=[])
    except ApiError as exc:
        if exc.status != 400:
            raise
        # Outside the server's RAG_CORPUS_ROOT (or on another machine): send the file.
        progress.console.print(f"[yellow]the server cannot read {escape(str(path))}[/] "
                               f"({escape(exc.detail)}); uploading it", soft_wrap=True)
        job_id = client.upload([path], corpus=corpus, passwords=[])["job_id"]
    task = progress.add_task("ingesting", total=None, detail="")
    for _, record in client.events(job_id):
        total = record.get("chunks_total") or None
        progress.update(
            task,
            total=total,
            completed=record.get("chunks_embedded", 0),
            detail=f"{record.get('stage', '')}, chunks embedded",
        )
    record = client.job(job_id)
    progress.update(task, total=record.get("chunks_total") or 1,
                    completed=record.get("chunks_total") or 1,
                    detail=f"{record['state']}: {record.get('message', '')}")
    failed = [f for f in record.get("files", []) if f.get("outcome") == "failed"]
    if record["state"] != "succeeded" or failed:
        reason = failed[0].get("reason") if failed else record.get("message")
        raise EvalError(f"ingesting {path} into corpus {corpus!r} did not succeed "
                        f"(job {job_id}, {record['state']}): {reason}")
    return record


def search_rankings(
    client: ApiClient,
    queries: Mapping[str, str],
    *,
    corpus: str,
    mode: str,
    top_k: int,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[], None] = lambda: None,
) -> dict[str, list[str]]:
    """Each query's documents (external ids, by best chunk) from POST /search, cache off."""
    from shared.search.evaluation import document_ranking

    def one(query_id: str) -> tuple[str, list[str]]:
        try:
            body = client.search(queries[query_id], corpus=corpus, mode=mode, top_k=top_k,
                                 use_cache=False)
        except ApiError as exc:
            raise EvalError(f"{mode} search for query {query_id!r} failed: "
                            f"{exc.detail or exc.code}") from exc
        on_done()
        return query_id, document_ranking(body["results"])

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return dict(pool.map(one, list(queries)))


def run_eval(
    client: ApiClient,
    dataset_dir: Path,
    *,
    split: str,
    corpus: str | None = None,
    top_k: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    modes: Sequence[str] = EVAL_MODES,
    console: Console | None = None,
) -> EvalReport:
    """Ingest the dataset's corpus, search every judged query in every mode, score the runs.

    Progress bars and notes go to `console` (stderr); without one, nothing is printed.
    """
    from shared.search.evaluation import DEFAULT_TOP_K, document_run, evaluate_runs, load_beir

    console = console or Console(stderr=True, quiet=True)

    dataset = load_beir(dataset_dir, split=split)
    corpus = corpus or default_corpus_name(dataset.root)
    top_k = top_k or DEFAULT_TOP_K
    with _progress(console) as progress:
        started = time.monotonic()
        job = ingest_corpus(client, dataset.corpus_path, corpus=corpus, progress=progress)
        ingest_s = time.monotonic() - started
        runs: dict[str, dict[str, dict[str, float]]] = {}
        search_s: dict[str, float] = {}
        for mode in modes:
            task = progress.add_task(f"queries {mode}", total=len(dataset.queries), detail="")
            started = time.monotonic()
            rankings = search_rankings(
                client, dataset.queries, corpus=corpus, mode=mode, top_k=top_k,
                concurrency=concurrency, on_done=lambda task=task: progress.advance(task),
            )
            search_s[mode] = time.monotonic() - started
            runs[mode] = document_run(rankings)
    scores = evaluate_runs(dataset.qrels, runs)
    return EvalReport(corpus=corpus, queries=len(dataset.queries), scores=scores, ingest=job,
                      ingest_s=ingest_s, search_s=search_s)


def _print_table(report: EvalReport, console: Console, *, split: str) -> None:
    from shared.search.evaluation import METRICS

    table = Table("mode", *METRICS,
                  title=f"{report.corpus}: {report.queries} judged queries ({split})")
    for mode, scores in report.scores.items():
        table.add_row(mode, *(f"{scores[m]:.4f}" for m in METRICS))
    console.print(table)
    job = report.ingest
    console.print(
        f"ingest {report.ingest_s:.1f}s ({job.get('message', '')}; embeddings computed "
        f"{job.get('embeddings_computed', 0)}), search "
        + ", ".join(f"{mode} {s:.1f}s" for mode, s in report.search_s.items())
    )


def eval_command(
    dataset_dir: Annotated[Path, typer.Argument(help="A BEIR folder: corpus.jsonl, "
                                                "queries.jsonl, qrels/<split>.tsv.")],
    split: Annotated[str, typer.Option(help="Judgments to score: qrels/<split>.tsv.")],
    corpus: Annotated[str | None, typer.Option(
        help="Corpus to ingest into. Default: eval-<folder name>.")] = None,
    top_k: Annotated[int | None, typer.Option(
        "--top-k", help="Chunks asked per query (enough for Recall@100 over documents).")] = None,
    concurrency: Annotated[int, typer.Option(help="Searches in flight.")] = DEFAULT_CONCURRENCY,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score retrieval on a BEIR dataset: nDCG@10, Recall@100, MRR@10 per search mode."""
    from shared.search.evaluation import DatasetError

    out, err = Console(), Console(stderr=True)
    client = client_from_env(timeout=120)
    try:
        report = run_eval(client, dataset_dir, split=split, corpus=corpus, top_k=top_k,
                          concurrency=concurrency, console=err)
    except (ApiError, DatasetError, EvalError) as exc:
        detail = exc.detail or exc.code if isinstance(exc, ApiError) else str(exc)
        err.print(f"[red]error:[/] {escape(detail)}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.as_json()))
    else:
        _print_table(report, out, split=split)


def register(app: typer.Typer) -> None:
    """Add `rag eval` to the CLI."""
    app.command("eval")(eval_command)
