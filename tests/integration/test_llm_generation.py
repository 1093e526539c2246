"""The openai generator against a real llama.cpp server (xllamacpp + SmolLM2-135M-Instruct)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from shared.generation.base import Source, Timeouts
from shared.generation.citations import Citation, TextDelta, repair_citations
from shared.generation.openai_compat import OpenAIChatGenerator
from shared.generation.policy import Completed, Fallback, generate_answer, stream_answer
from tests.support.data import unavailable
from tests.support.llama_server import LlamaServerProcess, llama_unavailable

pytestmark = [pytest.mark.integration]


@pytest.fixture(autouse=True)
def _llama_available() -> None:
    unavailable(llama_unavailable())

# pasa.pdf (../shared/data/papers), pages 1-2
SOURCES = [
    Source(
        n=1,
        title="PaSa: An LLM Agent for Comprehensive Academic Paper Search",
        page=2,
        text="PaSa consists of two LLM agents: the Crawler and the Selector. The Crawler "
        "processes the user query and can access papers from the paper queue. It can "
        "autonomously invoke the search tool, expand citations, or stop processing of the "
        "current paper.",
    ),
    Source(
        n=2,
        title="PaSa: An LLM Agent for Comprehensive Academic Paper Search",
        page=2,
        text="The Selector reads each paper in the paper queue to determine whether it meets "
        "the criteria specified in the user query.",
    ),
]
QUESTION = "What are the two agents of PaSa and what does each one do?"
# Generous: the model shares two cores with everything else a test run starts.
TIMEOUTS = Timeouts(connect_s=3, first_token_s=60, total_s=180)


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServerProcess]:
    with LlamaServerProcess(threads=1) as server:
        yield server


def test_openai_generator_streams_tokens_from_llama_cpp(llama: LlamaServerProcess) -> None:
    generator = OpenAIChatGenerator(
        base_url=llama.openai_base_url, timeouts=TIMEOUTS, max_tokens=48
    )
    deltas = list(generator.stream(question=QUESTION, sources=SOURCES))
    assert len(deltas) >= 5, deltas  # token by token, not one block
    assert all(deltas)
    answer = "".join(deltas)
    assert re.search(r"crawler|selector|agent", answer, re.IGNORECASE), answer


class Recording:
    """The generator, keeping the raw deltas the server sent."""

    def __init__(self, generator: OpenAIChatGenerator) -> None:
        self._generator = generator
        self.name, self.model = generator.name, generator.model
        self.raw: list[str] = []

    def stream(self, **kwargs: Any) -> Iterator[str]:
        for delta in self._generator.stream(**kwargs):
            self.raw.append(delta)
            yield delta


def test_citations_are_checked_on_the_models_output(llama: LlamaServerProcess) -> None:
    # SmolLM2-135M does not cite by itself; asked to repeat text with markers it streams them
    # split over tokens ("[", "1", ",", " ", "2", "].").
    question = (
        'Repeat this sentence exactly and say nothing else: "PaSa has two agents [1, 2]. '
        'The Crawler searches for papers [1]. It was invented in 1850 [7]."'
    )
    generator = Recording(
        OpenAIChatGenerator(base_url=llama.openai_base_url, timeouts=TIMEOUTS, max_tokens=96)
    )
    events = list(
        stream_answer(generator=generator, question=question, sources=SOURCES, timeouts=TIMEOUTS)
    )
    final = events[-1]
    assert isinstance(final, Completed), final
    raw = "".join(generator.raw)
    repaired = repair_citations(raw, n_sources=len(SOURCES))
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed == repaired.text
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", streamed)]
    assert all(1 <= n <= len(SOURCES) for n in markers)
    assert [e.n for e in events if isinstance(e, Citation)] == list(final.answer.cited)
    assert final.answer.cited == repaired.cited
    assert final.answer.invalid_citations == repaired.invalid_citations
    if re.search(r"\[\s*[12]", raw):
        assert final.answer.cited, raw
    assert final.answer.unsupported_sentences == sum(
        not s.supported for s in final.answer.sentences
    )
    assert final.answer.text.replace(" [unsupported]", "") == streamed
    assert (final.generator, final.attempts) == ("openai", 1)


def test_killing_the_server_mid_answer_falls_back_with_a_reason() -> None:
    with LlamaServerProcess(threads=1) as doomed:
        generator = OpenAIChatGenerator(
            base_url=doomed.openai_base_url, timeouts=TIMEOUTS, max_tokens=400
        )
        events = stream_answer(
            generator=generator,
            question="Describe every detail of how PaSa searches for papers, step by step.",
            sources=SOURCES,
            timeouts=TIMEOUTS,
        )
        texts = 0
        final: Completed | Fallback | None = None
        for event in events:
            if isinstance(event, TextDelta):
                texts += 1
                if texts == 3:
                    doomed.stop()
            elif isinstance(event, Completed | Fallback):
                final = event
        assert isinstance(final, Fallback), final
        assert (final.reason, final.partial, final.attempts) == ("stream_error", True, 1)

        # and with the server gone, the next question falls back before any text
        after = generate_answer(
            generator=generator, question=QUESTION, sources=SOURCES, timeouts=TIMEOUTS
        )
        assert isinstance(after, Fallback)
        assert (after.reason, after.partial, after.attempts) == ("connection_refused", False, 2)
