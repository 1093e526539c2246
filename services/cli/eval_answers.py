"""`rag eval-answers`: how well the running service answers a question set.

Questions are JSON lines: `{"question": ..., "paper": "pasa.pdf", "pages": [2, 3]}` for one
the corpus answers (the paper's file name and the pages that hold the answer), or
`{"question": ..., "answerable": false}` for one it cannot. Each goes through POST /ask with
the cache off. Reported:

- citation validity: share of answers without invalid citation numbers (and their total);
- supported share: of the answers' cited sentences, those whose words are found in the
  passages they cite (the server's lexical check, recomputed here from the citations);
- abstention: share of unanswerable questions refused, and of answerable ones refused;
- first-citation hit: share of answerable questions whose first citation is the expected
  paper, and the expected paper and page.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from services.cli.client import ApiClient, ApiError, client_from_env


class QuestionSetError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class AnswerQuestion:
    question: str
    paper: str | None = None
    pages: tuple[int, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.paper is not None


@dataclass(frozen=True, slots=True)
class AnswerScore:
    question: str
    answerable: bool
    abstained: bool
    fallback: bool
    invalid_citations: int
    cited_sentences: int
    supported_sentences: int
    first_paper_hit: bool
    first_page_hit: bool
    first_citation: str | None
    seconds: float


def load_questions(path: Path) -> list[AnswerQuestion]:
    questions = []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text = str(row["question"]).strip()
        except (ValueError, KeyError, TypeError):
            raise QuestionSetError(f"{path}:{no}: not a JSON object with a question") from None
        if row.get("answerable", True):
            if not row.get("paper"):
                raise QuestionSetError(
                    f"{path}:{no}: an answerable question needs its paper (file name), "
                    'or "answerable": false'
                )
            questions.append(
                AnswerQuestion(text, str(row["paper"]), tuple(int(p) for p in row.get("pages", ())))
            )
        else:
            questions.append(AnswerQuestion(text))
    if not questions:
        raise QuestionSetError(f"{path}: no questions")
    return questions


def _paper(citation: dict[str, Any]) -> str:
    return PurePosixPath(str(citation.get("source") or "")).name


def score_answer(question: AnswerQuestion, answer: dict[str, Any], *, seconds: float) -> AnswerScore:
    """One answer against what was expected of it."""
    from shared.generation import Source, ground_answer
    from shared.generation.grounding import UNSUPPORTED_MARK

    citations = answer.get("citations") or []
    sources = [Source(n=int(c["n"]), text=str(c.get("text") or "")) for c in citations]
    text = str(answer.get("answer", "")).replace(UNSUPPORTED_MARK, "")
    checks = ground_answer(text=text, sources=sources).sentences
    cited = [c for c in checks if c.cited]
    first = citations[0] if citations and not answer.get("abstained") else None
    paper_hit = first is not None and _paper(first) == question.paper
    return AnswerScore(
        question=question.question,
        answerable=question.answerable,
        abstained=bool(answer.get("abstained")),
        fallback=bool(answer.get("fallback")),
        invalid_citations=int(answer.get("invalid_citations") or 0),
        cited_sentences=len(cited),
        supported_sentences=sum(c.supported for c in cited),
        first_paper_hit=paper_hit,
        first_page_hit=paper_hit and first is not None and first.get("page") in question.pages,
        first_citation=f"{_paper(first)} p.{first.get('page')}" if first else None,
        seconds=round(seconds, 3),
    )


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarise(scores: Sequence[AnswerScore]) -> dict[str, Any]:
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    cited = sum(s.cited_sentences for s in scores)
    return {
        "questions": len(scores),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "citation_validity": _share(sum(s.invalid_citations == 0 for s in scores), len(scores)),
        "invalid_citations": sum(s.invalid_citations for s in scores),
        "cited_sentences": cited,
        "supported_share": _share(sum(s.supported_sentences for s in scores), cited),
        "abstention_unanswerable": _share(sum(s.abstained for s in unanswerable), len(unanswerable)),
        "abstention_answerable": _share(sum(s.abstained for s in answerable), len(answerable)),
        "first_citation_paper_hit": _share(sum(s.first_paper_hit for s in answerable), len(answerable)),
        "first_citation_page_hit": _share(sum(s.first_page_hit for s in answerable), len(answerable)),
        "fallbacks": sum(s.fallback for s in scores),
        "mean_seconds": round(sum(s.seconds for s in scores) / max(1, len(scores)), 3),
    }


def run_eval_answers(
    client: ApiClient, questions: Sequence[AnswerQuestion], *, corpus: str, top_k: int = 5
) -> tuple[dict[str, Any], list[AnswerScore]]:
    scores = []
    for q in questions:
        started = time.monotonic()
        try:
            answer = client.ask(q.question, corpus=corpus, top_k=top_k, use_cache=False)
        except ApiError as exc:
            raise QuestionSetError(
                f"asking {q.question!r} failed: {exc.detail or exc.code}"
            ) from None
        scores.append(score_answer(q, answer, seconds=time.monotonic() - started))
    return summarise(scores), scores


def eval_answers_command(
    questions: Annotated[Path, typer.Argument(help="JSON lines: question, paper, pages; or "
                                              'question and "answerable": false.')],
    corpus: Annotated[str, typer.Option(help="The corpus holding the papers.")] = "default",
    top_k: Annotated[int, typer.Option("--top-k", "-k")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Score the answers: citation validity, supported sentences, abstention, first-citation hits."""
    out, err = Console(), Console(stderr=True)
    client = client_from_env(timeout=300)
    try:
        report, scores = run_eval_answers(
            client, load_questions(questions), corpus=corpus, top_k=top_k
        )
    except (OSError, QuestionSetError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps({"summary": report, "answers": [asdict(s) for s in scores]}))
        return
    table = Table("question", "abstained", "first citation", "paper", "page", "cited/supported")
    for s in scores:
        table.add_row(
            escape(s.question[:60]),
            "yes" if s.abstained else "",
            escape(s.first_citation or "-"),
            "-" if not s.answerable else ("hit" if s.first_paper_hit else "miss"),
            "-" if not s.answerable else ("hit" if s.first_page_hit else "miss"),
            f"{s.cited_sentences}/{s.supported_sentences}",
        )
    out.print(table)
    for name, value in report.items():
        out.print(f"{name}: {value}")


def register(app: typer.Typer) -> None:
    """Add `rag eval-answers` to the CLI."""
    app.command("eval-answers")(eval_answers_command)
