"""The grounded prompt and the lexical support check of cited sentences."""

from __future__ import annotations

from shared.generation.base import Source, Turn, sources_from_hits
from shared.generation.grounding import (
    PROMPT_VERSION,
    SUPPORT_THRESHOLD,
    UNSUPPORTED_MARK,
    build_messages,
    ground_answer,
    split_answer_sentences,
    support,
)

# From pasa.pdf (../shared/data/papers), pages 1-2.
CRAWLER = (
    "The Crawler processes the user query and can access papers from the paper queue. It can "
    "autonomously invoke the search tool, expand citations, or stop processing of the current "
    "paper. All papers collected by the Crawler are appended to the paper queue."
)
DATASET = (
    "AutoScholarQuery includes 33,511 / 1,000 / 1,000 query-paper pairs in the training / "
    "development / test split."
)
SOURCES = [Source(n=1, text=CRAWLER, title="PaSa", page=2), Source(n=2, text=DATASET, page=3)]


def test_sources_are_numbered_exactly_as_retrieved() -> None:
    hits = [
        {"text": "first", "title": "A", "page": 3, "score": 0.2},
        {"text": "second", "title": None, "page": None, "score": 0.9},
    ]
    assert sources_from_hits(hits) == [
        Source(n=1, text="first", title="A", page=3),
        Source(n=2, text="second", title=None, page=None),
    ]


def test_prompt_numbers_sources_and_keeps_history_before_the_question() -> None:
    messages = build_messages(
        question="  What does the Crawler do? ",
        sources=SOURCES,
        history=[Turn("user", "Hi"), Turn("assistant", "Hello.")],
        max_source_chars=60,
    )
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "square brackets" in messages[0]["content"]
    user = messages[-1]["content"]
    assert user.startswith("Sources:\n\n[1] (PaSa, page 2)\nThe Crawler processes the user query")
    assert "\n\n[2] (page 3)\nAutoScholarQuery includes" in user
    assert user.endswith("\n\nQuestion: What does the Crawler do?")
    assert "from the paper queue" not in user  # each source cut to max_source_chars
    assert PROMPT_VERSION == "grounded-v1"


def test_a_paraphrase_of_the_cited_passage_is_supported() -> None:
    sentence = "The Crawler can invoke the search tool and expand citations [1]."
    assert support(sentence, [CRAWLER]) >= 0.8


def test_an_invented_sentence_with_a_borrowed_citation_is_not() -> None:
    sentence = "The Crawler was trained on ImageNet with a convolutional network [1]."
    assert support(sentence, [CRAWLER]) < SUPPORT_THRESHOLD


def test_numbers_count_as_content() -> None:
    assert support("There are 33,511 training pairs [2].", [DATASET]) == 1.0
    assert support("There are 12,000 training pairs [2].", [DATASET]) < 1.0


def test_unsupported_sentences_are_counted_and_marked_after_the_sentence() -> None:
    text = (
        "The Crawler can invoke the search tool and expand citations [1]. "
        "It was trained on ImageNet with convolutional networks [1]. "
        "I hope this helps."
    )
    grounded = ground_answer(text=text, sources=SOURCES, invalid_citations=2)
    assert grounded.unsupported_sentences == 1
    assert grounded.invalid_citations == 2
    assert grounded.text == (
        "The Crawler can invoke the search tool and expand citations [1]. "
        f"It was trained on ImageNet with convolutional networks [1].{UNSUPPORTED_MARK} "
        "I hope this helps."
    )
    assert [c.supported for c in grounded.sentences] == [True, False, True]
    assert grounded.sentences[2].support is None  # cites nothing: not checked
    assert grounded.cited == (1,)


def test_a_sentence_is_checked_against_all_and_only_its_cited_sources() -> None:
    sentence = "The Crawler can invoke the search tool; it learns from 33,511 pairs [1][2]."
    assert ground_answer(text=sentence, sources=SOURCES).unsupported_sentences == 0
    alone = "The Crawler can invoke the search tool; it learns from 33,511 pairs [2]."
    assert ground_answer(text=alone, sources=SOURCES).unsupported_sentences == 1


def test_markers_after_the_full_stop_stay_with_their_sentence() -> None:
    text = "PaSa has two agents. [1] The Crawler uses PPO, e.g. in training [2]. Done"
    spans = [text[a:b] for a, b in split_answer_sentences(text)]
    assert spans == [
        "PaSa has two agents. [1]",
        "The Crawler uses PPO, e.g. in training [2].",
        "Done",
    ]
