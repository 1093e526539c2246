"""The extractive answer: no LLM, the best prose sentences of the top chunks, each followed by
the number of its source.

Candidates are the sentences `shared.generation.answer_sentences` accepts (no captions,
table rows, references or equations), with heading lines removed first. A cheap lexical
pre-score picks the few dozen worth embedding; they are then ranked by cosine similarity to
the question, nudged by term overlap and the chunk's rank. A sentence joins the answer only
if it is at least half as similar to the question as the best one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shared.generation import answer_sentences

EXTRACTIVE = "extractive-v3"  # part of the answer cache key
MAX_SENTENCES = 3
# Sentences embedded per answer: the best by a cheap lexical pre-score. Embedding every
# sentence of every top chunk was 75-85% of a cold /ask; the answer's three come from the
# lexically closest few in practice. Each costs ~10 ms of one core with the exact model
# (ONNX; a SciFact sentence averages 25 words), ~3 ms on two with its int8 quantization
# (RAG_EXTRACTIVE_INT8): 24 took 250 ms on one thread, 8 take ~80 exact, ~25 int8.
MAX_CANDIDATES = 8
# The third sentence of an answer should not come from another topic.
RELATIVE_FLOOR = 0.5
_PAPER_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*\]")
# "5 Experiments 5.1 Experimental Setting We trained ...": numbered headings run into the
# sentence after them when a PDF's text has no line break between the two.
_SECTION_HEADING = re.compile(
    r"^(?:\d{1,2}(?:\.\d{1,2})*\.?\s+(?:[A-Z][\w’'-]*\s+(?:(?:of|and|for|the|in|on|to|a)\s+)?){1,6})+"
    r"(?=[A-Z][\w’'-]*\s+[a-z])"
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_HEADING = re.compile(r"(?:\S+\s+){0,11}\S*[^\s.!?:;,]|")


def without_headings(text: str) -> str:
    """The chunk without its heading lines (a paragraph of at most 12 words and no final
    punctuation), which would otherwise run into the sentence after them."""
    paragraphs = _PARAGRAPH_BREAK.split(text)
    return "\n\n".join(p for p in paragraphs if not _HEADING.fullmatch(p.strip()))


def extractive_answer(
    *,
    hits: Sequence[dict[str, Any]],
    queries: Sequence[str],
    tokenize: Callable[[str], list[str]],
    similarity: Callable[[list[str]], np.ndarray],
) -> str | None:
    """"Sentence. [n] Sentence. [m]" from `hits` (source n is hits[n - 1]); None when no
    chunk has a sentence that reads as prose.

    `similarity(sentences)` gives each sentence's cosine to the question (the best over
    `queries`, when a chat follow-up searched several).
    """
    # A sentence starting in lowercase is the tail of one cut at the chunk's start.
    candidates: list[tuple[int, str]] = [
        (i, s)
        for i, hit in enumerate(hits)
        for s in answer_sentences(without_headings(hit.get("text") or ""))
        if not s[0].islower()
    ]
    if not candidates:
        return None
    # The share of the question's terms a sentence contains, nudged towards better-ranked
    # chunks: the pre-score that picks which sentences are worth embedding.
    terms: set[str] = set().union(*(tokenize(q) for q in queries))
    overlap = np.array([len(terms & set(tokenize(s))) / max(1, len(terms)) for _, s in candidates])
    ranks = np.array([i for i, _ in candidates])
    if len(candidates) > MAX_CANDIDATES:
        keep = np.sort(np.argsort(-(overlap - 0.02 * ranks), kind="stable")[:MAX_CANDIDATES])
        candidates = [candidates[int(j)] for j in keep]
        overlap, ranks = overlap[keep], ranks[keep]
    cosine = similarity([s for _, s in candidates])
    scores = cosine + 0.15 * overlap - 0.02 * ranks
    floor = RELATIVE_FLOOR * float(cosine.max())
    chosen: list[tuple[int, str]] = []
    for j in np.argsort(-scores, kind="stable"):
        i, sentence = candidates[int(j)]
        if (chosen and cosine[j] < floor) or sentence in (s for _, s in chosen):
            continue
        chosen.append((i, sentence))
        if len(chosen) == MAX_SENTENCES:
            break
    return " ".join(f"{clean_sentence(s)} [{i + 1}]" for i, s in chosen)


def clean_sentence(sentence: str) -> str:
    """Without a section heading run into its start, and without the paper's own numeric
    references ("as in [12]"), which would read as ours."""
    return _PAPER_MARKER.sub("", _SECTION_HEADING.sub("", sentence))
