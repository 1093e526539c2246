"""What every generator shares: the numbered sources it reads, the time limits it keeps, and
the `Generator` protocol (question + sources in, a stream of text deltas out)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from shared.settings import GenerationSettings


@dataclass(frozen=True, slots=True)
class Source:
    """One retrieved chunk as the LLM sees it: `[n]` is its 1-based place in the results."""

    n: int
    text: str
    title: str | None = None
    page: int | None = None


def sources_from_hits(hits: Sequence[Mapping[str, Any]]) -> list[Source]:
    """Number retrieval results exactly as returned: hits[0] is [1], hits[1] is [2], ..."""
    return [
        Source(
            n=i,
            text=str(hit.get("text") or ""),
            title=hit.get("title") or None,
            page=hit.get("page"),
        )
        for i, hit in enumerate(hits, start=1)
    ]


@dataclass(frozen=True, slots=True)
class Turn:
    """An earlier message of a conversation (/chat), oldest first."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Timeouts:
    connect_s: float
    first_token_s: float
    total_s: float

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> Timeouts:
        return cls(
            connect_s=settings.llm_connect_timeout_s,
            first_token_s=settings.llm_first_token_timeout_s,
            total_s=settings.llm_total_timeout_s,
        )


class Generator(Protocol):
    """Streams an answer to `question` grounded in `sources`.

    `stream` yields non-empty text deltas in order and returns when the answer is complete;
    any failure raises a `GenerationError`. Setting `cancel` makes it stop at the next chunk
    the server sends and close the connection. Constructors are cheap (no network).
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    def stream(
        self,
        *,
        question: str,
        sources: Sequence[Source],
        history: Sequence[Turn] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[str]: ...


def generator_identity(*, generator: Generator, settings: GenerationSettings) -> dict[str, Any]:
    """What makes two answers to one question differ: part of the answer cache key."""
    from shared.generation.grounding import PROMPT_VERSION

    return {
        "generator": generator.name,
        "model": generator.model,
        "prompt": PROMPT_VERSION,
        "max_tokens": settings.llm_max_tokens,
        "temperature": settings.llm_temperature,
    }
