"""What the UI says about jobs, caches and answers: only what the API's records state."""

from __future__ import annotations

import pytest

from services.ui.present import (
    Badge,
    answer_flags,
    cache_badges,
    cache_rows,
    citation_heading,
    escape_markdown,
    generator_line,
    history_rows,
    job_badge,
    job_summary,
)


@pytest.mark.parametrize(
    "job,badge",
    [
        ({"state": "succeeded", "files_failed": 0}, Badge("succeeded", "green")),
        ({"state": "succeeded", "files_failed": 2}, Badge("succeeded, 2 failed", "orange")),
        ({"state": "running", "progress": 0.4166}, Badge("running, 42%", "blue")),
        ({"state": "failed", "files_failed": 3}, Badge("failed", "red")),
        ({"state": "cancelled"}, Badge("cancelled", "gray")),
        ({"state": "queued"}, Badge("queued", "gray")),
    ],
)
def test_a_job_with_failed_files_is_never_green(job: dict, badge: Badge) -> None:
    assert job_badge(job) == badge


def test_job_summary_states_the_record_figures_and_no_eta_once_ended() -> None:
    job = {
        "state": "cancelled",
        "files_done": 1,
        "files_total": 3,
        "files_failed": 0,
        "chunks_indexed": 40,
        "chunks_total": 204,
        "chunks_embedded": 64,
        "embeddings_cached": 10,
        "chunks_per_s": 12.5,
        "eta_s": 9.0,
    }
    assert job_summary(job) == (
        "1/3 files · 0 failed · 40/204 chunks indexed · 64 embedded (10 from cache)"
    )
    running = {**job, "state": "running"}
    assert job_summary(running).endswith("12.5 chunks/s · about 9 s left")


@pytest.mark.parametrize(
    "info,use_cache,labels",
    [
        ({"answer_hit": True, "retrieval_hit": False, "embed_hits": 0}, True, ["answer cache hit"]),
        (
            {"answer_hit": False, "retrieval_hit": True, "embed_hits": 0},
            True,
            ["retrieval cache hit"],
        ),
        ({"answer_hit": False, "retrieval_hit": False, "embed_hits": 1}, True, ["1 embedding hit"]),
        (
            {"answer_hit": False, "retrieval_hit": False, "embed_hits": 3},
            True,
            ["3 embedding hits"],
        ),
        (
            {"answer_hit": False, "retrieval_hit": False, "embed_hits": 0, "embed_misses": 1},
            True,
            ["no cache hit"],
        ),
        (None, True, ["no cache hit"]),
        ({"answer_hit": True}, False, ["cache off"]),
    ],
)
def test_cache_badges_are_those_the_response_reports(
    info: dict | None, use_cache: bool, labels: list[str]
) -> None:
    assert [b.label for b in cache_badges(info, use_cache=use_cache)] == labels


def test_answer_flags_name_abstention_fallback_and_unsupported_sentences() -> None:
    answer = {
        "abstained": True,
        "fallback": True,
        "fallback_reason": "llama.cpp server unreachable",
        "unsupported_sentences": ["A claim.", "Another."],
        "invalid_citations": [7],
    }
    assert [b.label for b in answer_flags(answer)] == [
        "abstained",
        "fallback: llama.cpp server unreachable",
        "2 unsupported sentences",
        "1 invalid citation",
    ]
    assert answer_flags({"abstained": False, "fallback": False, "unsupported_sentences": 0}) == []


def test_generator_line_and_citation_heading() -> None:
    assert generator_line({"generator": "llamacpp", "model": "qwen2.5-0.5b"}) == (
        "generator: llamacpp · model: qwen2.5-0.5b"
    )
    assert generator_line({}) == ""
    assert citation_heading({"n": 2, "title": "PaSa", "page": 7}) == "[2] PaSa, page 7"
    assert citation_heading({"n": 1, "source": "notes.md", "page": None}) == "[1] notes.md"


def test_cache_rows_show_megabytes_and_hit_rate() -> None:
    stats = {"tiers": {"answers": {"keys": 3, "bytes": 3 * 2**20, "hit_rate": 0.5}}}
    assert cache_rows(stats) == [{"tier": "answers", "keys": 3, "MB": "3.00", "hit rate": "50%"}]


def test_history_rows_carry_each_turns_cache_info() -> None:
    turns = [
        {
            "question": "q1",
            "use_cache": True,
            "elapsed_s": 1.234,
            "cache_info": {"answer_hit": False, "embed_hits": 0, "embed_misses": 1},
        },
        {
            "question": "q1",
            "use_cache": True,
            "elapsed_s": 0.01,
            "cache_info": {"answer_hit": True},
        },
        {"question": "q2", "use_cache": True, "error": "boom"},
    ]
    rows = history_rows(turns)
    assert [r["cache"] for r in rows] == ["no cache hit", "answer cache hit", "error"]
    assert rows[0]["embedding misses"] == 1 and rows[0]["seconds"] == "1.23"


def test_escaped_markdown_shows_a_papers_symbols_as_text() -> None:
    assert escape_markdown("$x_1$ *and* [1]") == r"\$x\_1\$ \*and\* \[1\]"
    assert Badge("a [b]", "red").markdown() == ":red-badge[a (b)]"
