"""Parsing of the OpenAI-compatible event stream (the live server is in tests/integration)."""

from __future__ import annotations

import json

import pytest

from shared.generation.errors import LLMBadResponse, LLMStreamError
from shared.generation.openai_compat import chat_deltas, sse_data
from shared.generation.transport import error_message, split_lines


def chunk(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    return "data: " + json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]})


def test_lines_survive_reads_cut_anywhere_even_inside_a_character() -> None:
    body = 'data: {"a": "é"}\r\n\r\ndata: [DONE]\n'.encode()
    for cut in range(1, len(body)):
        assert list(split_lines([body[:cut], body[cut:]])) == [
            'data: {"a": "é"}',
            "",
            "data: [DONE]",
        ]


def test_content_deltas_up_to_done() -> None:
    lines = [
        chunk(None),
        "",  # the role-only first chunk of llama.cpp and OpenAI
        ": keep-alive comment",
        "",
        chunk("PaSa has"),
        "",
        chunk(" two agents [1]."),
        "",
        chunk(None, finish="stop"),
        "",
        "data: [DONE]",
        "",
    ]
    assert list(chat_deltas(sse_data(lines))) == ["PaSa has", " two agents [1]."]


def test_a_multi_line_data_event_is_joined() -> None:
    assert list(sse_data(['data: {"a":', "data: 1}", ""])) == ['{"a":\n1}']


def test_a_stream_cut_before_done_is_an_error_not_a_short_answer() -> None:
    with pytest.raises(LLMStreamError, match="no \\[DONE\\]"):
        list(chat_deltas(sse_data([chunk("PaSa has"), "", chunk(" two"), ""])))


def test_a_finish_reason_without_done_is_accepted() -> None:
    lines = [chunk("PaSa."), "", chunk(None, finish="length"), ""]
    assert list(chat_deltas(sse_data(lines))) == ["PaSa."]


def test_error_events_raise_with_the_servers_message() -> None:
    with pytest.raises(LLMStreamError, match="context size exceeded"):
        list(chat_deltas(sse_data(['data: {"error": {"message": "context size exceeded"}}', ""])))
    with pytest.raises(LLMStreamError, match="slot unavailable"):
        list(sse_data(['error: {"message": "slot unavailable"}']))


def test_data_that_is_not_json_is_a_bad_response() -> None:
    with pytest.raises(LLMBadResponse, match="not JSON"):
        list(chat_deltas(["<html>"]))


def test_error_bodies_of_both_servers_give_their_message() -> None:
    assert error_message(b'{"error": "model \'x\' not found"}') == "model 'x' not found"
    assert error_message(b'{"error": {"message": "bad key", "type": "auth"}}') == "bad key"
    assert error_message(b"Bad Gateway") == "Bad Gateway"
    assert error_message(b"") == "(empty body)"
