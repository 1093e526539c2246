"""Whether retrieval found anything relevant enough to answer from.

The signal is the best dense cosine similarity between the question and any chunk of the
corpus, the dense index's top 1 (all-MiniLM-L6-v2, normalised vectors). Fused hybrid scores
cannot serve: convex fusion min-max normalises each list per query, so its top score is near
1 for any question.

ABSTAIN_MIN_SCORE is calibrated on SciFact train by bench/calibrate_abstention.py: 300 claims
whose gold abstracts are in a 400-abstract sample (964 chunks, each embedded as the index
holds it: the title, then the chunk), against 40 everyday questions ("What is the capital of
France?", "How do I knit a scarf?", ...). Best cosine per question:

    answerable claims   min 0.264  p01 0.298  p05 0.362  median 0.644
    off-topic           median 0.178  p95 0.248  max 0.294
    in-domain claims without their abstract in the sample: p05 0.342  median 0.486

0.30 refuses all 40 off-topic questions and abstains on 4 of 300 answerable claims (1.3%);
0.28 would abstain on 1 (0.3%) but answer one off-topic question. (With chunk vectors of the
text alone, before titles were embedded: 0.30 abstained on 0.7%.) It cannot tell in-domain
unanswerable claims apart (2% refused): abstention catches questions about another subject,
not gaps in a corpus. Off-topic scores grow with the corpus: on 1,000 abstracts (2,289
chunks, text-only vectors) their maximum was 0.328 and 0.30 refused 38 of 40. Failing
towards an answer is the cheaper error: an LLM answer to an off-topic question is still
checked for citations and support, a wrongly refused question gets nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

ABSTAIN_MIN_SCORE = 0.30
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
