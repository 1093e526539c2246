"""What the UI says about jobs, caches and answers: labels derived from the API's records only,
never from a guess (a job with failed files is not green; "1 embedding hit" only when there was one).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ACTIVE_STATES = frozenset({"queued", "running"})


@dataclass(frozen=True, slots=True)
class Badge:
    label: str
    color: str  # a Streamlit badge colour: green, orange, red, blue, gray, violet

    def markdown(self) -> str:
        label = self.label.replace("[", "(").replace("]", ")")
        return f":{self.color}-badge[{label}]"


def badges_markdown(badges: list[Badge]) -> str:
    return " ".join(b.markdown() for b in badges)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def is_active(job: Mapping[str, Any]) -> bool:
    return job.get("state") in ACTIVE_STATES


def job_badge(job: Mapping[str, Any]) -> Badge:
    state = str(job.get("state", "unknown"))
    failed = int(job.get("files_failed") or 0)
    if state == "succeeded":
        return (
            Badge(f"succeeded, {failed} failed", "orange")
            if failed
            else Badge("succeeded", "green")
        )
    if state == "running":
        return Badge(f"running, {round(100 * float(job.get('progress') or 0))}%", "blue")
    if state == "failed":
        return Badge("failed", "red")
    return Badge(state, "gray")


def job_summary(job: Mapping[str, Any]) -> str:
    """The job's figures in one line, as the record states them."""
    parts = [
        f"{job.get('files_done', 0)}/{job.get('files_total', 0)} files",
        f"{job.get('files_failed', 0)} failed",
        f"{job.get('chunks_indexed', 0)}/{job.get('chunks_total', 0)} chunks indexed",
        f"{job.get('chunks_embedded', 0)} embedded ({job.get('embeddings_cached', 0)} from cache)",
    ]
    if is_active(job):
        if job.get("chunks_per_s"):
            parts.append(f"{job['chunks_per_s']} chunks/s")
        if job.get("eta_s") is not None:
            parts.append(f"about {round(float(job['eta_s']))} s left")
    return " · ".join(parts)


def file_rows(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "file": f.get("file", ""),
            "outcome": f.get("outcome", ""),
            "chunks": f.get("chunks", 0),
            "reason": f.get("reason") or "",
        }
        for f in job.get("files") or []
    ]


def job_rows(jobs: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "job": str(j.get("job_id", ""))[:12],
            "corpus": j.get("corpus", ""),
            "source": j.get("path", ""),
            "status": job_badge(j).label,
            "files": f"{j.get('files_done', 0)}/{j.get('files_total', 0)}",
            "chunks": j.get("chunks_indexed", 0),
            "created": _clock(j.get("created_at")),
        }
        for j in jobs
    ]


def _clock(ts: Any) -> str:
    if not ts:
        return ""
    return dt.datetime.fromtimestamp(float(ts)).strftime("%Y-%m-%d %H:%M:%S")


def megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.2f}"


def cache_rows(stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for tier, t in (stats.get("tiers") or {}).items():
        rows.append(
            {
                "tier": tier,
                "keys": t.get("keys", 0),
                "MB": megabytes(t.get("bytes", 0)),
                "hit rate": f"{100 * float(t.get('hit_rate', 0)):.0f}%",
            }
        )
    return rows


def cache_badges(cache_info: Mapping[str, Any] | None, *, use_cache: bool) -> list[Badge]:
    """One badge per cache tier that served this response; "no cache hit" when none did."""
    if not use_cache:
        return [Badge("cache off", "gray")]
    info = cache_info or {}
    badges = []
    if info.get("answer_hit"):
        badges.append(Badge("answer cache hit", "green"))
    if info.get("retrieval_hit"):
        badges.append(Badge("retrieval cache hit", "green"))
    embed_hits = int(info.get("embed_hits") or 0)
    if embed_hits > 0:
        badges.append(Badge(plural(embed_hits, "embedding hit"), "blue"))
    return badges or [Badge("no cache hit", "gray")]


def _count(value: Any) -> int:
    if isinstance(value, list | tuple):
        return len(value)
    return int(value or 0)


def answer_flags(answer: Mapping[str, Any]) -> list[Badge]:
    flags = []
    if answer.get("abstained"):
        flags.append(Badge("abstained", "orange"))
    if answer.get("fallback"):
        reason = answer.get("fallback_reason")
        flags.append(Badge(f"fallback: {reason}" if reason else "fallback", "orange"))
    unsupported = _count(answer.get("unsupported_sentences"))
    if unsupported:
        flags.append(Badge(plural(unsupported, "unsupported sentence"), "red"))
    invalid = _count(answer.get("invalid_citations"))
    if invalid:
        flags.append(Badge(plural(invalid, "invalid citation"), "red"))
    return flags


def generator_line(answer: Mapping[str, Any]) -> str:
    parts = []
    if answer.get("generator"):
        parts.append(f"generator: {answer['generator']}")
    if answer.get("model"):
        parts.append(f"model: {answer['model']}")
    return " · ".join(parts)


def citation_heading(citation: Mapping[str, Any]) -> str:
    title = citation.get("title") or citation.get("source") or "untitled"
    page = citation.get("page")
    where = f", page {page}" if page else ""
    return f"[{citation.get('n', '?')}] {title}{where}"


def history_rows(turns: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i, turn in enumerate(turns, start=1):
        info = turn.get("cache_info") or {}
        rows.append(
            {
                "#": i,
                "question": turn.get("question", ""),
                "cache": ", ".join(
                    b.label for b in cache_badges(info, use_cache=turn.get("use_cache", True))
                )
                if not turn.get("error")
                else "error",
                "embedding hits": int(info.get("embed_hits") or 0),
                "embedding misses": int(info.get("embed_misses") or 0),
                "seconds": f"{float(turn.get('elapsed_s') or 0):.2f}",
            }
        )
    return rows


_MARKDOWN_SPECIAL = set("\\`*_{}[]()<>#+-.!|$~:")


def escape_markdown(text: str) -> str:
    """Text shown as itself in st.markdown: a paper's `$x$` or `*` is not formatting."""
    return "".join(f"\\{ch}" if ch in _MARKDOWN_SPECIAL else ch for ch in text)
