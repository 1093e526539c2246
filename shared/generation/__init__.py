"""Answer generation: LLM generators behind one protocol, grounding checks, abstention, the
fallback policy, and the extractive sentence filter.

    build_generator(settings)            -> Generator | None   (None: extractive)
    sources_from_hits(hits)              -> [Source]  numbered [1]..[n] as retrieved
    should_abstain(similarities=...)     -> bool      before generating anything
    stream_answer(generator=..., ...)    -> TextDelta / Citation ... then Completed | Fallback
    answer_sentences(chunk_text)         -> prose sentences for the extractive answer
"""

from shared.generation.abstention import ABSTAIN_ANSWER, ABSTAIN_MIN_SCORE, should_abstain
from shared.generation.base import (
    Generator,
    Source,
    Timeouts,
    Turn,
    generator_identity,
    sources_from_hits,
)
from shared.generation.citations import Citation, CitationFilter, TextDelta, repair_citations
from shared.generation.errors import REASONS, GenerationError
from shared.generation.extractive import answer_sentences, is_answer_sentence
from shared.generation.factory import build_generator
from shared.generation.grounding import (
    PROMPT_VERSION,
    GroundedAnswer,
    SentenceCheck,
    build_messages,
    ground_answer,
)
from shared.generation.policy import (
    Completed,
    Fallback,
    GenerationEvent,
    generate_answer,
    stream_answer,
)
from shared.settings import GenerationSettings

__all__ = [
    "ABSTAIN_ANSWER",
    "ABSTAIN_MIN_SCORE",
    "PROMPT_VERSION",
    "REASONS",
    "Citation",
    "CitationFilter",
    "Completed",
    "Fallback",
    "GenerationError",
    "GenerationEvent",
    "GenerationSettings",
    "Generator",
    "GroundedAnswer",
    "SentenceCheck",
    "Source",
    "TextDelta",
    "Timeouts",
    "Turn",
    "answer_sentences",
    "build_generator",
    "build_messages",
    "generate_answer",
    "generator_identity",
    "ground_answer",
    "is_answer_sentence",
    "repair_citations",
    "should_abstain",
    "sources_from_hits",
    "stream_answer",
]
