"""Citation markers: repaired to [n], out-of-range ones dropped and counted, same on a stream."""

from __future__ import annotations

import random

import pytest

from shared.generation.citations import Citation, CitationFilter, TextDelta, repair_citations


@pytest.mark.parametrize(
    ("raw", "repaired"),
    [
        ("Two agents [1, 2].", "Two agents [1][2]."),
        ("Two agents [1,2].", "Two agents [1][2]."),
        ("Two agents [1-2].", "Two agents [1][2]."),
        ("Two agents [1–3].", "Two agents [1][2][3]."),
        ("Two agents [1 and 2].", "Two agents [1][2]."),
        ("Two agents 【1】.", "Two agents [1]."),
        ("Two agents 【1, 3】.", "Two agents [1][3]."),
        ("Two agents (1).", "Two agents [1]."),
        ("Two agents (1, 2), trained with RL (3)", "Two agents [1][2], trained with RL [3]"),
        ("Two agents [Source 2].", "Two agents [2]."),
        ("Two agents [1][2].", "Two agents [1][2]."),
    ],
)
def test_variants_become_one_form(raw: str, repaired: str) -> None:
    result = repair_citations(raw, n_sources=3)
    assert result.text == repaired
    assert result.invalid_citations == 0


def test_out_of_range_numbers_are_dropped_and_counted() -> None:
    result = repair_citations("PaSa has two agents [4]. It uses PPO [0][2, 7].", n_sources=3)
    assert result.text == "PaSa has two agents. It uses PPO [2]."
    assert result.invalid_citations == 3
    assert result.cited == (2,)


def test_text_that_only_looks_like_a_marker_stays() -> None:
    text = (
        "It outputs (1) a decision token and (2) a rationale. In [2020] the action [Search] "
        "ran; see Figure (a)."
    )
    result = repair_citations(text, n_sources=3)
    assert result.text == text
    assert result.cited == ()


def test_cited_numbers_are_in_order_of_first_citation() -> None:
    result = repair_citations("B [3]. A [1][3]. C [2, 1].", n_sources=3)
    assert result.cited == (3, 1, 2)


def test_a_partial_marker_is_held_until_it_resolves() -> None:
    citations = CitationFilter(n_sources=2)
    assert citations.feed("The Crawler collects papers [") == [
        TextDelta("The Crawler collects papers")
    ]
    assert citations.feed("1") == []
    assert citations.feed(",2") == []
    assert citations.feed("] and") == [
        TextDelta(" [1][2]"),
        Citation(1),
        Citation(2),
        TextDelta(" and"),
    ]
    assert citations.feed(" reads them 【") == [TextDelta(" reads them")]
    assert citations.feed("2】.") == [
        TextDelta(" [2]."),
    ]
    assert citations.finish() == []
    assert citations.text == "The Crawler collects papers [1][2] and reads them [2]."


def test_a_citing_paren_waits_for_the_next_character() -> None:
    citations = CitationFilter(n_sources=2)
    assert citations.feed("Two agents (1)") == [TextDelta("Two agents")]
    assert citations.feed(".") == [TextDelta(" [1]"), Citation(1), TextDelta(".")]
    enumeration = CitationFilter(n_sources=2)
    enumeration.feed("It outputs (1)")
    assert enumeration.feed(" a token") == [TextDelta(" (1) a token")]
    assert enumeration.cited == []


def test_a_dropped_marker_takes_the_space_before_it_even_across_deltas() -> None:
    citations = CitationFilter(n_sources=1)
    for delta in ("PaSa uses PPO ", "[", "5", "]", "[1].", " Done [3]."):
        citations.feed(delta)
    citations.finish()
    assert citations.text == "PaSa uses PPO [1]. Done."
    assert citations.invalid_citations == 2


def test_an_unclosed_bracket_is_released_at_the_end() -> None:
    citations = CitationFilter(n_sources=2)
    citations.feed("The answer is [1")
    assert citations.finish() == [TextDelta(" [1")]
    assert citations.text == "The answer is [1"


def test_streaming_in_any_pieces_gives_the_whole_text_result() -> None:
    text = (
        "PaSa consists of two agents [1, 2]. It is trained (2) with RL [1-2] and 【3】 "
        "but not [9]; it outputs (1) a token (3). The end (1)"
    )
    whole = repair_citations(text, n_sources=3)
    rng = random.Random(7)
    for _ in range(200):
        cuts = sorted(rng.sample(range(1, len(text)), rng.randint(1, 25)))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        citations = CitationFilter(n_sources=3)
        events = [e for piece in pieces for e in citations.feed(piece)] + citations.finish()
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
        assert [e.n for e in events if isinstance(e, Citation)] == list(whole.cited)
        assert citations.invalid_citations == whole.invalid_citations == 1
