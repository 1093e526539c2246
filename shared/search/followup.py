"""Follow-up questions of a chat made standalone for retrieval, deterministically.

The gate fires on a message that leans on the conversation: one with a pronoun that points
back (it, its, they, them, their, this, that, these, those) or one of at most four words
("and the dataset?"). Its rewrite is the message followed by the key terms of the previous
question (that question's own rewrite, if it had one) which the message does not already
use: "What are its limitations?" after "How does PaSa search for papers?" becomes
"What are its limitations? PaSa search papers". No LLM: the same conversation always gives
the same query. Retrieval then runs both the rewrite and the raw message; `fuse_results`
merges the two rankings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

POINTING_PRONOUNS = frozenset(
    {"it", "its", "itself", "they", "them", "their", "theirs", "this", "that", "these", "those"}
)
SHORT_FOLLOWUP_WORDS = 4
MAX_KEY_TERMS = 8
FUSION_K = 60  # reciprocal rank fusion constant for the two result lists

_WORD = re.compile(r"[^\W_](?:[\w'’\-.]*[^\W_])?")
# Words that carry no topic: function words, question words, and what every question about a
# paper says ("paper", "method", "explain").
_STOP = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing done down during each few for
    from further had has have having he her here hers him his how i if in into is it its itself
    just may me might more most must my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their theirs them then there these
    they this those through to too under until up upon us very was we were what when where which
    while who whom whose why will with would you your yours
    tell explain describe describes described give show shows mean means please know
    paper papers article study work authors author propose proposed use used using
    """.split()  # noqa: SIM905 - a word list reads better as text
)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def is_followup(message: str) -> bool:
    """True when `message` needs the conversation to be understood."""
    tokens = [w.lower() for w in words(message)]
    return len(tokens) <= SHORT_FOLLOWUP_WORDS or any(t in POINTING_PRONOUNS for t in tokens)


def key_terms(text: str, *, exclude: Iterable[str] = ()) -> list[str]:
    """Topic words of `text` in order, as written, once each (case-insensitive)."""
    seen = {e.lower() for e in exclude}
    terms: list[str] = []
    for word in words(text):
        lower = word.lower()
        if lower in _STOP or lower in seen or (len(lower) < 2 and not lower.isdigit()):
            continue
        seen.add(lower)
        terms.append(word)
    return terms[:MAX_KEY_TERMS]


def rewrite_followup(message: str, *, previous_question: str | None) -> str | None:
    """The standalone query for `message`, or None when the gate does not fire (or there is
    no earlier question, or it adds no term)."""
    if not previous_question or not is_followup(message):
        return None
    terms = key_terms(previous_question, exclude={w.lower() for w in words(message)})
    if not terms:
        return None
    return f"{message.strip()} {' '.join(terms)}"


def previous_question(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The last user message of a session, as it was searched (its rewrite when it had one)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("rewritten_query") or message.get("content") or "") or None
    return None


def fuse_results(
    rankings: Sequence[Sequence[dict[str, Any]]], *, top_k: int
) -> list[dict[str, Any]]:
    """One ranking from several (reciprocal rank fusion on chunk ids; the first list wins
    ties). A row keeps its own fields; its `score` is its best in any list."""
    fused: dict[str, float] = {}
    rows: dict[str, dict[str, Any]] = {}
    order: dict[str, tuple[int, int]] = {}
    for li, ranking in enumerate(rankings):
        for rank, row in enumerate(ranking, start=1):
            chunk = row["chunk_id"]
            fused[chunk] = fused.get(chunk, 0.0) + 1.0 / (FUSION_K + rank)
            order.setdefault(chunk, (li, rank))
            if chunk not in rows or row["score"] > rows[chunk]["score"]:
                rows[chunk] = row
    ranked = sorted(fused, key=lambda c: (-fused[c], order[c]))
    return [rows[c] for c in ranked[:top_k]]
