"""Whether retrieval found anything relevant enough to answer from.

The signal is the best dense cosine similarity between the question and any chunk of the
corpus, the dense index's top 1 (all-MiniLM-L6-v2, normalised vectors). Fused hybrid scores
cannot serve: convex fusion min-max normalises each list per query, so its top score is near
1 for any question.

ABSTAIN_MIN_SCORE is calibrated on SciFact train by bench/calibrate_abstention.py: 300 claims
whose gold abstracts are in a 400-abstract sample (1,616 chunks of 128 word pieces, each
embedded as the index holds it: the title, then the chunk), against 40 everyday questions
("What is the capital of France?", "How do I knit a scarf?", ...). Best cosine per question:

    answerable claims   min 0.292  p01 0.319  p05 0.382  median 0.666
    off-topic           median 0.196  p95 0.250  max 0.320
    in-domain claims without their abstract in the sample: p05 0.354  median 0.496

0.28 refuses 39 of the 40 off-topic questions and abstains on none of the 300 answerable
claims; 0.27-0.29 tie, 0.30 would abstain on 1 (0.3%) and refuse the same 39. The one it
answers is "What is the population of Tokyo?" (0.32).
(With 200-word-piece chunks, before chunking v3, 0.30 refused all 40 and abstained on 4 of
300: shorter chunks match a question more closely, on or off topic.) It cannot tell in-domain
unanswerable claims apart (2% refused): abstention catches questions about another subject,
not gaps in a corpus. Off-topic scores grow with the corpus. Failing towards an answer is the
cheaper error: an LLM answer to an off-topic question is still checked for citations and
support, a wrongly refused question gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

ABSTAIN_MIN_SCORE = 0.28
ABSTAIN_ANSWER = (
    "The indexed papers do not seem to cover this question: no passage is similar enough "
    "to it to answer from."
)


def should_abstain(*, similarities: Iterable[float], min_score: float = ABSTAIN_MIN_SCORE) -> bool:
    """True when no retrieved chunk reaches `min_score` cosine similarity to the question.

    `similarities` are question-chunk cosines of the retrieved chunks (any order); none at all
    (nothing retrieved) abstains too.
    """
    best = max(similarities, default=None)
    return best is None or best < min_score
