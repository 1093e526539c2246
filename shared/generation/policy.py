"""Run a generator under the service's rules and say what to serve.

`stream_answer` yields `TextDelta` and `Citation` events as the answer arrives (markers
repaired, see `citations`), then exactly one final event:

- `Completed`: the grounded answer (`grounding.GroundedAnswer`), or
- `Fallback`: the LLM failed; serve the extractive answer with `fallback: true` and
  `fallback_reason: event.reason` (one of `errors.REASONS`). If `partial` is true, text was
  already streamed: tell the client to discard it.

Rules: the first text must arrive within `first_token_s` of each attempt and the whole answer,
retry included, within `total_s` of the start; the generator runs in a helper thread so these
limits hold whatever a network read does (a timed-out attempt is cancelled and abandoned; its
thread ends at the server's next chunk, or at the latest after `total_s` without one). A retryable error (connection
refused, HTTP 5xx or 429) before any text is retried once, after `retry_delay_s` (or the
server's Retry-After, at most `max_retry_delay_s`) when the time limit leaves room.
"""

from __future__ import annotations

import collections.abc
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.generation.base import Generator, Source, Timeouts, Turn
from shared.generation.citations import Citation, CitationFilter, TextDelta
from shared.generation.errors import (
    FirstTokenTimeout,
    GenerationError,
    LLMBadResponse,
    LLMRateLimited,
    TotalTimeout,
)
from shared.generation.grounding import GroundedAnswer, ground_answer


@dataclass(frozen=True, slots=True)
class Completed:
    answer: GroundedAnswer
    generator: str
    model: str
    attempts: int
    first_token_s: float
    total_s: float


@dataclass(frozen=True, slots=True)
class Fallback:
    reason: str
    detail: str
    partial: bool  # text was streamed before the failure
    attempts: int


GenerationEvent = TextDelta | Citation | Completed | Fallback


def stream_answer(
    *,
    generator: Generator,
    question: str,
    sources: Sequence[Source],
    timeouts: Timeouts,
    history: Sequence[Turn] = (),
    retry_delay_s: float = 0.25,
    max_retry_delay_s: float = 1.0,
) -> Iterator[GenerationEvent]:
    started = time.monotonic()
    deadline = started + timeouts.total_s
    attempts = 0
    while True:
        attempts += 1
        citations = CitationFilter(n_sources=len(sources))
        first_token_s: float | None = None
        deltas = _timed_stream(
            generator=generator,
            question=question,
            sources=sources,
            history=history,
            first_token_s=timeouts.first_token_s,
            deadline=deadline,
        )
        try:
            for delta in deltas:
                if first_token_s is None:
                    first_token_s = time.monotonic() - started
                yield from citations.feed(delta)
            yield from citations.finish()
        except GenerationError as error:
            streamed = first_token_s is not None
            delay = _retry_delay(error, retry_delay_s, max_retry_delay_s)
            retry = error.retryable and not streamed and attempts == 1
            if retry and time.monotonic() + delay < deadline:
                time.sleep(delay)
                continue
            yield Fallback(error.reason, error.detail, partial=streamed, attempts=attempts)
            return
        finally:
            deltas.close()  # cancels the generator when the caller stops early
        if not citations.text.strip():
            yield Fallback(
                LLMBadResponse.reason, "the model returned an empty answer", False, attempts
            )
            return
        answer = ground_answer(
            text=citations.text, sources=sources, invalid_citations=citations.invalid_citations
        )
        yield Completed(
            answer=answer,
            generator=generator.name,
            model=generator.model,
            attempts=attempts,
            first_token_s=first_token_s or 0.0,
            total_s=time.monotonic() - started,
        )
        return


def generate_answer(
    *,
    generator: Generator,
    question: str,
    sources: Sequence[Source],
    timeouts: Timeouts,
    history: Sequence[Turn] = (),
) -> Completed | Fallback:
    """`stream_answer` without the stream: its final event."""
    final: Completed | Fallback | None = None
    for event in stream_answer(
        generator=generator,
        question=question,
        sources=sources,
        timeouts=timeouts,
        history=history,
    ):
        if isinstance(event, Completed | Fallback):
            final = event
    assert final is not None
    return final


def _retry_delay(error: GenerationError, default_s: float, max_s: float) -> float:
    if isinstance(error, LLMRateLimited) and error.retry_after_s is not None:
        return min(error.retry_after_s, max_s)
    return default_s


def _timed_stream(
    *,
    generator: Generator,
    question: str,
    sources: Sequence[Source],
    history: Sequence[Turn],
    first_token_s: float,
    deadline: float,
) -> collections.abc.Generator[str, None, None]:
    """The generator's deltas, read in a helper thread so that the limits are exact."""
    cancel = threading.Event()
    inbox: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()

    def pump() -> None:
        deltas = generator.stream(
            question=question, sources=sources, history=history, cancel=cancel
        )
        try:
            for delta in deltas:
                if cancel.is_set():
                    return
                inbox.put(("delta", delta))
            inbox.put(("end", None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
            inbox.put(("error", exc))
        finally:
            close = getattr(deltas, "close", None)
            if close is not None:
                close()  # now, not when collected: its connection is released at once

    window_end = time.monotonic() + first_token_s
    first_deadline = min(deadline, window_end)
    threading.Thread(target=pump, name=f"llm-{generator.name}", daemon=True).start()
    got_text = False
    try:
        while True:
            limit = deadline if got_text else first_deadline
            try:
                kind, value = inbox.get(timeout=max(0.0, limit - time.monotonic()))
            except queue.Empty:
                if not got_text and window_end <= deadline:
                    raise FirstTokenTimeout(f"no answer text within {first_token_s:g} s") from None
                raise TotalTimeout("the answer did not finish within the time limit") from None
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            got_text = True
            yield str(value)
    finally:
        cancel.set()
