"""The extractive answer's sentence choice (shared/search/extractive.py), on fixed vectors."""

from __future__ import annotations

import numpy as np

from shared.search.extractive import clean_sentence, extractive_answer, without_headings

PASA = (
    "Crawler Paper Queue User Query Selector User Query Select / Drop [Search] [Expand] [Stop] "
    "Figure 1: Architecture of PaSa. PaSa consists of two LLM agents, the Crawler and the "
    "Selector. The Crawler processes the user query and collects papers into a queue [12]. "
    "The Selector reads each paper in the queue and keeps those that meet the query."
)
OTTERS = "Sea otters\n\nSea otters use rocks as tools to crack open shellfish."


def _tokenize(text: str) -> list[str]:
    return [w.strip(".,?").lower() for w in text.split()]


def _similar_to(words: dict[str, float]):
    """A stand-in for the embedder: a sentence's similarity is that of its best keyword."""

    def similarity(sentences: list[str]) -> np.ndarray:
        return np.array([max((v for w, v in words.items() if w in s), default=0.05)
                         for s in sentences])

    return similarity


def test_headings_and_numbered_sections_do_not_start_an_answer_sentence() -> None:
    assert without_headings(OTTERS) == "Sea otters use rocks as tools to crack open shellfish."
    assert clean_sentence("5 Experiments 5.1 Setting We trained the Selector.") == (
        "We trained the Selector."
    )
    assert clean_sentence("3 of the 12 participants agreed [4].") == "3 of the 12 participants agreed."


def test_the_answer_quotes_prose_with_retrieval_numbers_and_no_figure_labels() -> None:
    hits = [{"text": OTTERS}, {"text": PASA}]
    answer = extractive_answer(
        hits=hits,
        queries=["What are the agents of PaSa?"],
        tokenize=_tokenize,
        similarity=_similar_to({"two LLM agents": 0.8, "Crawler processes": 0.6,
                                "Selector reads": 0.55}),
    )
    assert answer == (
        "PaSa consists of two LLM agents, the Crawler and the Selector. [2] "
        "The Crawler processes the user query and collects papers into a queue. [2] "
        "The Selector reads each paper in the queue and keeps those that meet the query. [2]"
    )


def test_sentences_far_less_similar_than_the_best_are_left_out() -> None:
    answer = extractive_answer(
        hits=[{"text": PASA}, {"text": OTTERS}],
        queries=["What are the agents of PaSa?"],
        tokenize=_tokenize,
        similarity=_similar_to({"two LLM agents": 0.8, "otters": 0.3}),
    )
    assert answer == "PaSa consists of two LLM agents, the Crawler and the Selector. [1]"


def test_no_prose_means_no_answer() -> None:
    debris = "Table 2: Results. 0.81 0.77 0.92 0.64 0.55 0.71 0.69 0.88 0.93"
    assert extractive_answer(hits=[{"text": debris}], queries=["results?"], tokenize=_tokenize,
                             similarity=_similar_to({})) is None
