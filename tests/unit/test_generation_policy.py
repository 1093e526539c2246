"""Settings, abstention and the fallback policy with in-process generators (no network)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
from pydantic import ValidationError

from shared.generation import (
    Completed,
    Fallback,
    GenerationSettings,
    Source,
    Timeouts,
    Turn,
    build_generator,
    generate_answer,
    generator_identity,
    should_abstain,
    stream_answer,
)
from shared.generation.errors import LLMServerError, LLMStreamError, LLMUnavailable
from shared.generation.grounding import UNSUPPORTED_MARK
from shared.generation.ollama import OllamaGenerator
from shared.generation.openai_compat import OpenAIChatGenerator

SOURCES = [Source(n=1, text="PaSa consists of two LLM agents, the Crawler and the Selector.")]
TIMEOUTS = Timeouts(connect_s=1, first_token_s=2, total_s=5)


class ScriptedGenerator:
    """Each call to `stream` plays the next script: text deltas, then maybe an exception."""

    name = "scripted"
    model = "script-1"

    def __init__(self, *scripts: tuple[Sequence[str], Exception | None]) -> None:
        self._scripts = list(scripts)
        self.calls = 0

    def stream(
        self,
        *,
        question: str,
        sources: Sequence[Source],
        history: Sequence[Turn] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        deltas, error = self._scripts[min(self.calls, len(self._scripts) - 1)]
        self.calls += 1
        yield from deltas
        if error is not None:
            raise error


def run(generator: ScriptedGenerator) -> Completed | Fallback:
    return generate_answer(generator=generator, question="q", sources=SOURCES, timeouts=TIMEOUTS)


def test_settings_default_to_extractive_and_read_flat_env_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert GenerationSettings().generator == "extractive"
    assert build_generator(GenerationSettings()) is None
    monkeypatch.setenv("RAG_GENERATOR", "openai")
    monkeypatch.setenv("RAG_LLM_BASE_URL", "http://127.0.0.1:8080/v1/")
    monkeypatch.setenv("RAG_LLM_TOTAL_TIMEOUT_S", "30")
    settings = GenerationSettings()
    assert settings.llm_base_url == "http://127.0.0.1:8080/v1"
    generator = build_generator(settings)
    assert isinstance(generator, OpenAIChatGenerator)
    assert generator_identity(generator=generator, settings=settings) == {
        "generator": "openai",
        "model": "server-default",
        "prompt": "grounded-v1",
        "max_tokens": 512,
        "temperature": 0.0,
    }
    ollama = build_generator(GenerationSettings(generator="ollama", llm_model="smollm2:135m"))
    assert isinstance(ollama, OllamaGenerator)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"generator": "gpt"}, "RAG_GENERATOR must be one of extractive, openai, ollama"),
        ({"generator": "openai"}, "needs RAG_LLM_BASE_URL"),
        ({"generator": "ollama"}, "needs RAG_LLM_MODEL"),
        ({"llm_base_url": "localhost:8080"}, "is not an http:// or https:// URL"),
        ({"llm_first_token_timeout_s": 90}, "must not exceed RAG_LLM_TOTAL_TIMEOUT_S"),
        ({"llm_temperature": 3}, "less than or equal to 2"),
    ],
)
def test_settings_refuse_nonsense(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GenerationSettings(**fields)


def test_abstain_when_no_chunk_is_similar_enough() -> None:
    assert should_abstain(similarities=[0.12, 0.29], min_score=0.3)
    assert not should_abstain(similarities=[0.12, 0.31], min_score=0.3)
    assert should_abstain(similarities=[], min_score=0.3)
    assert not should_abstain(similarities=[0.0], min_score=-1)


def test_a_complete_answer_is_grounded() -> None:
    generator = ScriptedGenerator(
        (["PaSa consists of two LLM agents [1]. ", "It runs on quantum computers [1]."], None)
    )
    final = run(generator)
    assert isinstance(final, Completed)
    assert final.answer.unsupported_sentences == 1
    assert final.answer.text.endswith(f"quantum computers [1].{UNSUPPORTED_MARK}")
    assert (final.generator, final.model, final.attempts) == ("scripted", "script-1", 1)


def test_a_retryable_error_before_any_text_is_retried_once() -> None:
    generator = ScriptedGenerator(([], LLMServerError("502", status=502)), (["Two [1]."], None))
    final = run(generator)
    assert isinstance(final, Completed)
    assert (final.attempts, generator.calls) == (2, 2)


def test_no_second_retry() -> None:
    generator = ScriptedGenerator(([], LLMUnavailable("refused")))
    final = run(generator)
    assert isinstance(final, Fallback)
    assert (final.reason, final.attempts, generator.calls) == ("connection_refused", 2, 2)


def test_no_retry_once_text_was_streamed() -> None:
    generator = ScriptedGenerator((["PaSa has "], LLMServerError("503", status=503)))
    final = run(generator)
    assert isinstance(final, Fallback)
    assert (final.reason, final.partial, generator.calls) == ("http_5xx", True, 1)


def test_a_non_retryable_error_falls_back_at_once() -> None:
    generator = ScriptedGenerator(([], LLMStreamError("cut")))
    final = run(generator)
    assert isinstance(final, Fallback)
    assert (final.reason, final.attempts) == ("stream_error", 1)


def test_an_empty_answer_falls_back() -> None:
    final = run(ScriptedGenerator(([" ", "\n"], None)))
    assert isinstance(final, Fallback)
    assert final.reason == "bad_response"


def test_a_bug_in_a_generator_is_not_hidden() -> None:
    with pytest.raises(KeyError):
        run(ScriptedGenerator(([], KeyError("choices"))))


def test_stopping_early_cancels_the_generator() -> None:
    cancelled = threading.Event()

    class Endless:
        name, model = "endless", "e"

        def stream(self, *, question, sources, history=(), cancel=None):  # type: ignore[no-untyped-def]
            assert cancel is not None
            try:
                while not cancel.is_set():
                    yield "word "
            finally:  # seen the flag, or closed at its yield: either way it stops here
                cancelled.set()

    events = stream_answer(generator=Endless(), question="q", sources=SOURCES, timeouts=TIMEOUTS)
    next(events)
    events.close()
    assert cancelled.wait(5)
