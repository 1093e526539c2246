"""The ollama generator and the fallback policy against a protocol-level Ollama test server."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from shared.generation.base import Source, Timeouts
from shared.generation.citations import Citation, TextDelta
from shared.generation.errors import LLMBadResponse, LLMStreamError
from shared.generation.ollama import OllamaGenerator
from shared.generation.policy import Completed, Fallback, generate_answer, stream_answer
from tests.support.ollama_server import OllamaTestServer, Reply

SOURCES = [
    Source(
        n=1, text="PaSa consists of two LLM agents, the Crawler and the Selector.", title="PaSa"
    ),
    Source(n=2, text="The Crawler is optimised with reinforcement learning (PPO).", page=4),
]
QUESTION = "How is PaSa built?"
FAST = Timeouts(connect_s=2, first_token_s=5, total_s=10)


@pytest.fixture
def ollama() -> Iterator[OllamaTestServer]:
    with OllamaTestServer() as server:
        yield server


def generator(url: str, timeouts: Timeouts = FAST) -> OllamaGenerator:
    return OllamaGenerator(url=url, model="smollm2:135m", timeouts=timeouts, max_tokens=64)


def answer(server_url: str, timeouts: Timeouts = FAST) -> Completed | Fallback:
    return generate_answer(
        generator=generator(server_url, timeouts),
        question=QUESTION,
        sources=SOURCES,
        timeouts=timeouts,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streams_tokens_in_order_and_sends_the_grounded_prompt(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(tokens=("PaSa has ", "two agents", " [1]."))
    deltas = list(generator(ollama.url).stream(question=QUESTION, sources=SOURCES))
    assert deltas == ["PaSa has ", "two agents", " [1]."]
    request = ollama.requests[0]
    assert request["model"] == "smollm2:135m"
    assert request["stream"] is True
    assert request["options"] == {"temperature": 0.0, "num_predict": 64}
    user = request["messages"][-1]["content"]
    assert "[1] (PaSa)\nPaSa consists of two LLM agents" in user
    assert "[2] (page 4)\nThe Crawler is optimised" in user
    assert user.endswith("Question: How is PaSa built?")


def test_lines_split_across_writes_are_reassembled(ollama: OllamaTestServer) -> None:
    tokens = ("Le Crawler ", "collecte des articles ", "éàü [2].")
    ollama.default = Reply(tokens=tokens, split_lines=True)
    assert "".join(generator(ollama.url).stream(question=QUESTION, sources=SOURCES)) == "".join(
        tokens
    )


def test_error_line_inside_a_200_is_a_stream_error(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(tokens=("PaSa ", "has ", "two"), error_after=2)
    stream = generator(ollama.url).stream(question=QUESTION, sources=SOURCES)
    assert next(stream) == "PaSa "
    assert next(stream) == "has "
    with pytest.raises(LLMStreamError, match="model runner has unexpectedly stopped"):
        next(stream)


def test_error_line_mid_answer_falls_back_and_flags_partial_text(
    ollama: OllamaTestServer,
) -> None:
    ollama.default = Reply(tokens=("PaSa has ", "two agents ", "[1]."), error_after=2)
    events = list(
        stream_answer(
            generator=generator(ollama.url), question=QUESTION, sources=SOURCES, timeouts=FAST
        )
    )
    final = events[-1]
    assert isinstance(final, Fallback)
    assert (final.reason, final.partial, final.attempts) == ("stream_error", True, 1)
    assert "unexpectedly stopped" in final.detail
    assert len(ollama.requests) == 1  # text was streamed: no retry


def test_citations_are_repaired_and_checked_on_the_stream(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(
        tokens=(
            "PaSa consists of two LLM agents [1,",
            " 2]. The Crawler is ",
            ("optimised with reinforcement learning ["),
            "2]. It won a prize [9].",
        ),
    )
    events = list(
        stream_answer(
            generator=generator(ollama.url), question=QUESTION, sources=SOURCES, timeouts=FAST
        )
    )
    citations = [e.n for e in events if isinstance(e, Citation)]
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    final = events[-1]
    assert isinstance(final, Completed)
    assert citations == [1, 2]
    assert streamed == (
        "PaSa consists of two LLM agents [1][2]. The Crawler is optimised with "
        "reinforcement learning [2]. It won a prize."
    )
    assert final.answer.text == streamed  # supported sentences carry no mark
    assert final.answer.invalid_citations == 1
    assert final.answer.cited == (1, 2)
    assert final.answer.unsupported_sentences == 0
    assert (final.generator, final.model, final.attempts) == ("ollama", "smollm2:135m", 1)


def test_unknown_model_is_a_bad_response_with_ollamas_message(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(status=404, error="model 'smollm2:135m' not found, try pulling it first")
    final = answer(ollama.url)
    assert isinstance(final, Fallback)
    assert final.reason == "bad_response"
    assert "model 'smollm2:135m' not found" in final.detail
    assert len(ollama.requests) == 1  # a 4xx is not retried


def test_a_5xx_is_retried_once_then_answers(ollama: OllamaTestServer) -> None:
    ollama.enqueue(Reply(status=503, error="server busy"))
    ollama.default = Reply(tokens=("PaSa has two agents [1].",))
    final = answer(ollama.url)
    assert isinstance(final, Completed)
    assert final.attempts == 2
    assert final.answer.text == "PaSa has two agents [1]."
    assert len(ollama.requests) == 2


def test_two_429s_fall_back_after_one_retry(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(status=429, error="too many requests", retry_after="0")
    final = answer(ollama.url)
    assert isinstance(final, Fallback)
    assert (final.reason, final.attempts, final.partial) == ("http_429", 2, False)
    assert len(ollama.requests) == 2


def test_nothing_listening_is_connection_refused_after_one_retry() -> None:
    started = time.monotonic()
    final = answer(f"http://127.0.0.1:{free_port()}")
    assert isinstance(final, Fallback)
    assert (final.reason, final.attempts) == ("connection_refused", 2)
    assert time.monotonic() - started < 3  # a quick retry, no long sleep


def test_connection_dropped_mid_answer_falls_back(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(tokens=("PaSa ", "has ", "two ", "agents."), drop_after=2)
    final = answer(ollama.url)
    assert isinstance(final, Fallback)
    assert (final.reason, final.partial) == ("stream_error", True)


def test_stream_without_done_line_is_not_taken_for_a_short_answer(
    ollama: OllamaTestServer,
) -> None:
    ollama.default = Reply(tokens=("PaSa has two agents.",), no_done=True)
    with pytest.raises(LLMStreamError, match="ended before its done line"):
        list(generator(ollama.url).stream(question=QUESTION, sources=SOURCES))


def test_a_line_that_is_not_json_is_a_bad_response(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(raw_lines=(b"<html>proxy error</html>\n",))
    with pytest.raises(LLMBadResponse, match="not a JSON line"):
        list(generator(ollama.url).stream(question=QUESTION, sources=SOURCES))


def test_no_first_token_in_time_is_a_first_token_timeout(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(tokens=("late",), hold_before=0)
    timeouts = Timeouts(connect_s=2, first_token_s=0.3, total_s=5)
    started = time.monotonic()
    final = answer(ollama.url, timeouts)
    elapsed = time.monotonic() - started
    assert isinstance(final, Fallback)
    assert (final.reason, final.partial, final.attempts) == ("first_token_timeout", False, 1)
    assert 0.3 <= elapsed < 5  # not the server's hold: the limit ended the wait


def test_a_stall_after_the_first_token_is_a_total_timeout(ollama: OllamaTestServer) -> None:
    ollama.default = Reply(tokens=("PaSa ", "has two agents."), hold_before=1)
    timeouts = Timeouts(connect_s=2, first_token_s=2.5, total_s=3)
    started = time.monotonic()
    final = answer(ollama.url, timeouts)
    elapsed = time.monotonic() - started
    assert isinstance(final, Fallback)
    assert (final.reason, final.partial) == ("total_timeout", True)
    assert 3 <= elapsed < 8
