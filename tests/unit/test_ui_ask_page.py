"""The Ask page against the chat API contract, rendered by Streamlit's AppTest with a scripted
API (a fake: the live chat API is exercised by tests/browser/test_ui_session.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from services.ui.client import ApiError
from services.ui.sse import ServerEvent

CITATION = {
    "n": 1,
    "source": "upload/pasa.pdf",
    "title": "PaSa: An LLM Agent",
    "page": 7,
    "chunk_id": "c-1",
    "doc_id": "d" * 64,
    "text": "PaSa retrieves paper information.",
    "score": 0.91,
}


def _final(**overrides: Any) -> dict[str, Any]:
    return {
        "answer": "PaSa retrieves papers from its database [1].",
        "citations": [CITATION],
        "generator": "llamacpp",
        "model": "qwen2.5-0.5b-instruct",
        "abstained": False,
        "fallback": False,
        "fallback_reason": None,
        "invalid_citations": [],
        "unsupported_sentences": [],
        "cache_info": {
            "answer_hit": False,
            "retrieval_hit": False,
            "embed_hits": 0,
            "embed_misses": 1,
        },
        "session_id": "s-42",
        "rewritten_query": "How does PaSa find papers?",
        **overrides,
    }


class ScriptedApi:
    """Answers each chat turn with the next scripted list of events."""

    def __init__(self, turns: list[list[ServerEvent]]) -> None:
        self.turns = turns
        self.requests: list[dict[str, Any]] = []

    def stream_answer(self, **request: Any) -> Iterator[ServerEvent]:
        self.requests.append(request)
        for event in self.turns.pop(0):
            if event.event == "raise":
                raise ApiError(0, "unreachable", event.data)
            yield event

    def export(self, session_id: str) -> bytes:
        return b'{"session_id": "%s"}\n' % session_id.encode()


def ev(name: str, data: Any) -> ServerEvent:
    return ServerEvent(name, data if isinstance(data, str) else json.dumps(data))


def _ask_page(api: "ScriptedApi") -> None:  # noqa: UP037 - its source runs alone, unimported
    import streamlit as st

    from services.ui.views import ask

    st.session_state.setdefault("corpus", "papers")
    ask.render(api)


def _run(api: ScriptedApi, *questions: str) -> Any:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_function(_ask_page, args=(api,), default_timeout=30)
    app.run()
    for question in questions:
        app.chat_input[0].set_value(question).run()
    assert not app.exception, app.exception
    return app


def _text(app: Any) -> str:
    return (
        "\n".join(str(m.value) for m in app.markdown)
        + "\n"
        + "\n".join(str(c.value) for c in app.caption)
    )


def test_a_streamed_turn_shows_answer_generator_citation_and_honest_badges() -> None:
    api = ScriptedApi(
        [
            [
                ev("retrieval", {"sources": [CITATION]}),
                ev("token", {"text": "PaSa retrieves "}),
                ev("token", {"text": "papers from its database [1]."}),
                ev("citation", {"n": 1}),
                ev("final", _final()),
            ]
        ]
    )
    app = _run(api, "How does PaSa find papers?")
    text = _text(app)
    assert r"PaSa retrieves papers from its database \[1\]\." in text
    assert ":gray-badge[no cache hit]" in text
    assert "embedding hit" not in text  # embed_hits is 0: no such badge
    assert "generator: llamacpp · model: qwen2.5-0.5b-instruct" in text
    assert r"**\[1\] PaSa\: An LLM Agent, page 7**" in text
    assert [b.label for b in app.button if b.label.startswith("Open page")] == ["Open page 7"]
    assert app.session_state["chat"]["session_id"] == "s-42"
    assert api.requests[0] == {
        "message": "How does PaSa find papers?",
        "corpus": "papers",
        "session_id": None,
        "top_k": 5,
        "use_cache": True,
    }
    assert not app.get("download_button")[0].proto.disabled


def test_a_cached_answer_arrives_whole_and_shows_the_answer_hit() -> None:
    hit = {"answer_hit": True, "retrieval_hit": False, "embed_hits": 0, "embed_misses": 0}
    api = ScriptedApi([[ev("final", _final(cache_info=hit))]])
    app = _run(api, "How does PaSa find papers?")
    text = _text(app)
    assert r"PaSa retrieves papers from its database \[1\]\." in text
    assert ":green-badge[answer cache hit]" in text


def test_follow_ups_send_the_session_and_the_flags_are_shown() -> None:
    flagged = _final(
        answer="I cannot answer that from the papers.",
        abstained=True,
        fallback=True,
        fallback_reason="generator timed out",
        unsupported_sentences=["One."],
        cache_info={"answer_hit": False, "retrieval_hit": True, "embed_hits": 2, "embed_misses": 0},
    )
    api = ScriptedApi([[ev("final", _final())], [ev("final", flagged)]])
    app = _run(api, "How does PaSa find papers?", "And its selector?")
    assert api.requests[1]["session_id"] == "s-42"
    text = _text(app)
    for badge in (
        ":orange-badge[abstained]",
        ":orange-badge[fallback: generator timed out]",
        ":red-badge[1 unsupported sentence]",
        ":green-badge[retrieval cache hit]",
        ":blue-badge[2 embedding hits]",
    ):
        assert badge in text
    history = app.table[0].value
    assert list(history["cache"]) == ["no cache hit", "retrieval cache hit, 2 embedding hits"]


@pytest.mark.parametrize(
    "events,message",
    [
        (
            [ev("error", {"error": "generator_error", "detail": "the model server is down"})],
            "the model server is down",
        ),
        ([ev("token", {"text": "Half"})], "the answer stream ended before the final answer"),
        ([ev("raise", "the answer stream broke off: reset")], "the answer stream broke off: reset"),
    ],
)
def test_a_failed_turn_says_why(events: list[ServerEvent], message: str) -> None:
    app = _run(ScriptedApi([events]), "q")
    assert [e.value for e in app.error] == [message]
    assert app.session_state["chat"]["session_id"] is None
    assert app.get("download_button")[0].proto.disabled
