"""The follow-up gate of /chat: when a message is rewritten, and into what."""

from __future__ import annotations

import pytest

from shared.search.conversation import llm_history
from shared.search.followup import (
    fuse_results,
    is_followup,
    key_terms,
    previous_question,
    rewrite_followup,
)

PASA = "How does PaSa search for academic papers?"


@pytest.mark.parametrize(
    "message",
    [
        "What are its limitations?",
        "How well do they perform on the benchmark compared with Google Scholar?",
        "Why does this matter for systematic reviews of the literature?",
        "Which datasets were these agents trained on in the end?",
        "Is that better than a keyword search over titles and abstracts?",
        "Who funded their work on reinforcement learning for agents?",
        "And the training data?",  # four words
        "Limitations?",
    ],
)
def test_pointing_pronouns_and_short_messages_are_follow_ups(message: str) -> None:
    assert is_followup(message)


@pytest.mark.parametrize(
    "message",
    [
        "What is the capital of France and why is Paris so large?",
        "How does CiteSee help researchers discover relevant citations?",
        "Which metric measures the quality of long-form summaries?",
    ],
)
def test_standalone_questions_are_not_follow_ups(message: str) -> None:
    assert not is_followup(message)
    assert rewrite_followup(message, previous_question=PASA) is None


def test_a_follow_up_gets_the_previous_questions_key_terms() -> None:
    assert rewrite_followup("What are its limitations?", previous_question=PASA) == (
        "What are its limitations? PaSa search academic"
    )


def test_terms_the_message_already_has_are_not_repeated() -> None:
    rewrite = rewrite_followup("Does PaSa search fast?", previous_question=PASA)
    assert rewrite == "Does PaSa search fast? academic"


def test_no_previous_question_or_nothing_to_add_means_no_rewrite() -> None:
    assert rewrite_followup("What are its limitations?", previous_question=None) is None
    assert rewrite_followup("What about it?", previous_question="What is it about?") is None


def test_the_same_conversation_always_gives_the_same_query() -> None:
    rewrites = {rewrite_followup("And its recall?", previous_question=PASA) for _ in range(5)}
    assert len(rewrites) == 1


def test_key_terms_drop_function_words_and_keep_case_and_order() -> None:
    terms = key_terms("What does the Crawler agent of PaSa do with the paper queue?")
    assert terms == ["Crawler", "agent", "PaSa", "queue"]
    assert len(key_terms(" ".join(f"term{i}" for i in range(20)))) == 8


def test_the_previous_question_is_the_last_user_message_as_searched() -> None:
    messages = [
        {"role": "user", "content": PASA, "rewritten_query": None},
        {"role": "assistant", "content": "PaSa has a Crawler [1]."},
        {"role": "user", "content": "And its recall?", "rewritten_query": "And its recall? PaSa"},
        {"role": "assistant", "content": "Recall is 0.8 [2]."},
    ]
    assert previous_question(messages) == "And its recall? PaSa"
    assert previous_question(messages[:2]) == PASA
    assert previous_question([]) is None


def test_an_llm_sees_the_last_exchange_without_its_citation_markers() -> None:
    messages = [
        {"role": "user", "content": "old question"},
        {"role": "assistant", "content": "old answer [1]."},
        {"role": "user", "content": PASA},
        {"role": "assistant", "content": "It crawls [1][2]. It reads papers [3] [unsupported]"},
    ]
    turns = llm_history(messages)
    assert [(t.role, t.content) for t in turns] == [
        ("user", PASA),
        ("assistant", "It crawls. It reads papers"),
    ]


def _row(chunk: str, score: float) -> dict:
    return {"chunk_id": chunk, "score": score, "text": chunk}


def test_fusion_ranks_chunks_both_queries_found_first_and_keeps_the_best_score() -> None:
    rewrite = [_row("a", 0.9), _row("b", 0.5), _row("c", 0.2)]
    raw = [_row("d", 0.8), _row("b", 0.7), _row("e", 0.1)]
    fused = fuse_results([rewrite, raw], top_k=4)
    assert [r["chunk_id"] for r in fused] == ["b", "a", "d", "c"]
    assert fused[0]["score"] == 0.7
    assert len(fuse_results([rewrite, raw], top_k=10)) == 5
