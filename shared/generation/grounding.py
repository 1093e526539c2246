"""The grounded prompt, and a lexical check that each cited sentence is backed by its sources.

A sentence that cites `[n]` is supported when at least `SUPPORT_THRESHOLD` of its content words
(lowercased, English stop words removed, Snowball-stemmed; numbers kept) occur in the cited
passages. 0.45 is calibrated on SciFact train by bench/calibrate_abstention.py: 300 claims
scored against their gold abstract (supported: median 0.60) and against the most similar other
abstract of the sample (unsupported: median 0.25). 0.45 has the best balanced accuracy, 0.775:
71% of supported claims pass, 84% of unsupported ones are caught (0.40: 77%/76%; 0.50:
70%/85%). SciFact claims are terse rewordings; an answer that copies or closely paraphrases
its passage scores 0.8-1.0, an invented sentence with a borrowed citation well under 0.45.
A sentence with no content words ("Yes [1].") passes.

Unsupported sentences are counted and marked in the answer text: ` [unsupported]` is appended
after the sentence (after its final punctuation and markers), so every reader of the text, the
CLI included, sees the flag without extra fields. Sentences without citations are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.generation.base import Source, Turn
from shared.generation.citations import CANONICAL

PROMPT_VERSION = "grounded-v1"
SUPPORT_THRESHOLD = 0.45
UNSUPPORTED_MARK = " [unsupported]"
MAX_SOURCE_CHARS = 1500

SYSTEM_PROMPT = (
    "You answer questions about research papers using only the numbered sources given. "
    "After every sentence, cite the sources that support it by number in square brackets, "
    "like [1] or [2][3]. Use only the numbers of the sources given. If the sources do not "
    "answer the question, say that they do not. Be concise: at most five sentences."
)

_STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    may me might more most must my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they this
    those through to too under until up upon us very was we were what when where which while who
    whom why will with would you your yours however thus therefore using used use based via
    paper papers study studies show shows shown et al e g i
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_WORDS = re.compile(r"[^\W_]+(?:[.\-][^\W_]+)*")
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "al", "fig", "figs", "eq", "eqs", "vs", "etc", "cf", "no"}
)
_SENTENCE_END = re.compile(r"[.!?]+(?:\s*\[\d+\])*(?=\s|$)")


def build_messages(
    *,
    question: str,
    sources: Sequence[Source],
    history: Sequence[Turn] = (),
    max_source_chars: int = MAX_SOURCE_CHARS,
) -> list[dict[str, str]]:
    """Chat messages: the rules, earlier turns, then the numbered sources and the question."""
    blocks = []
    for source in sources:
        where = ", ".join(
            part for part in (source.title, f"page {source.page}" if source.page else None) if part
        )
        text = " ".join(source.text.split())[:max_source_chars]
        blocks.append(f"[{source.n}] ({where})\n{text}" if where else f"[{source.n}]\n{text}")
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question.strip()}"
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    messages += [{"role": turn.role, "content": turn.content} for turn in history]
    messages.append({"role": "user", "content": user})
    return messages


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type hints

    return Stemmer.Stemmer("english")


def content_terms(text: str) -> set[str]:
    """Stemmed content words of `text`: what the support check compares."""
    words = [w.lower() for w in _WORDS.findall(CANONICAL.sub(" ", text))]
    kept = [w for w in words if w not in _STOPWORDS and (len(w) > 1 or w.isdigit())]
    return set(_stemmer().stemWords(kept))


def support(sentence: str, passages: Sequence[str]) -> float:
    """Share of the sentence's content terms found in the passages (1.0 if it has none)."""
    terms = content_terms(sentence)
    if not terms:
        return 1.0
    found = set().union(*(content_terms(p) for p in passages)) if passages else set()
    return len(terms & found) / len(terms)


def split_answer_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) spans of the answer's sentences; markers after a full stop stay with it."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        word = re.search(r"([\w.]+)$", text[start : match.start()])
        if word and word[1].lower().rstrip(".") in _ABBREVIATIONS:
            continue
        spans.append((start, match.end()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    return [(s + len(text[s:e]) - len(text[s:e].lstrip()), e) for s, e in spans]


@dataclass(frozen=True, slots=True)
class SentenceCheck:
    text: str
    cited: tuple[int, ...]
    support: float | None  # None: cites nothing, not checked
    supported: bool


@dataclass(frozen=True, slots=True)
class GroundedAnswer:
    text: str  # unsupported sentences marked with UNSUPPORTED_MARK
    cited: tuple[int, ...]  # source numbers, in order of first citation
    invalid_citations: int
    unsupported_sentences: int
    sentences: tuple[SentenceCheck, ...]


def ground_answer(
    *, text: str, sources: Sequence[Source], invalid_citations: int = 0
) -> GroundedAnswer:
    """Check each citing sentence of `text` (markers already repaired) against its sources."""
    passages = {s.n: s.text for s in sources}
    checks: list[SentenceCheck] = []
    marked: list[str] = []
    cited: list[int] = []
    last = 0
    for start, end in split_answer_sentences(text):
        sentence = text[start:end]
        numbers = tuple(dict.fromkeys(int(n) for n in CANONICAL.findall(sentence)))
        numbers = tuple(n for n in numbers if n in passages)
        cited.extend(n for n in numbers if n not in cited)
        score = support(sentence, [passages[n] for n in numbers]) if numbers else None
        ok = score is None or score >= SUPPORT_THRESHOLD
        checks.append(SentenceCheck(sentence, numbers, score, ok))
        marked.append(text[last:end] + ("" if ok else UNSUPPORTED_MARK))
        last = end
    marked.append(text[last:])
    return GroundedAnswer(
        text="".join(marked),
        cited=tuple(cited),
        invalid_citations=invalid_citations,
        unsupported_sentences=sum(not c.supported for c in checks),
        sentences=tuple(checks),
    )
