"""LLM answers through the API: the openai generator against a real llama.cpp server
(SmolLM2-135M, one thread), over two shared papers, in a deployment of its own.

The last test kills the llama.cpp server mid-answer, so it stays last in this module.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.generation import REASONS
from tests.support.api import ingest
from tests.support.data import PAPERS, require, unavailable
from tests.support.llama_server import LlamaServerProcess, llama_unavailable
from tests.support.service import LiveService

pytestmark = [pytest.mark.integration]

CORPUS = "llm-papers"
PAPER_FILES = ("pasa.pdf", "2304.02623v1.pdf")
QUESTION = "What are the two agents of PaSa and what does each one do?"


@pytest.fixture(scope="module")
def llama() -> Iterator[LlamaServerProcess]:
    unavailable(llama_unavailable())
    with LlamaServerProcess(threads=1) as server:
        yield server


@pytest.fixture(scope="module")
def llm_service(
    redis_url: str, llama: LlamaServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveService]:
    require(PAPERS)
    root = tmp_path_factory.mktemp("llm-root")
    (root / "papers").mkdir()
    for name in PAPER_FILES:
        shutil.copy(PAPERS / name, root / "papers" / name)
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("llm-data"),
        corpus_root=root,
        workers=1,
        key_prefix=f"t{uuid.uuid4().hex[:6]}",
        env={
            "RAG_GENERATOR": "openai",
            "RAG_LLM_BASE_URL": llama.openai_base_url,
            "RAG_LLM_MAX_TOKENS": "64",
            # Generous: the model shares two cores with everything else a test run starts.
            "RAG_LLM_FIRST_TOKEN_TIMEOUT_S": "120",
            "RAG_LLM_TOTAL_TIMEOUT_S": "240",
        },
    )
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=300) as client:
            job = ingest(client, root / "papers", CORPUS)
            assert job["state"] == "succeeded", job
        yield live
    finally:
        live.stop()


@pytest.fixture(scope="module")
def api(llm_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=llm_service.url, timeout=300) as client:
        yield client


def stream(
    client: httpx.Client, path: str, body: dict[str, Any], *, on_token=None, on_event=None
) -> list[tuple[str, dict]]:
    events: list[tuple[str, dict]] = []
    with client.stream("POST", path, json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["x-accel-buffering"] == "no"
        name = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "token" and on_token is not None:
                    on_token()
                if on_event is not None:
                    on_event(events)
                name = None
    return events


def check_citations(final: dict[str, Any], n_sources: int) -> None:
    assert isinstance(final["invalid_citations"], int) and final["invalid_citations"] >= 0
    assert isinstance(final["unsupported_sentences"], int) and final["unsupported_sentences"] >= 0
    numbers = [int(n) for n in re.findall(r"\[(\d+)\]", final["answer"])]
    assert all(1 <= n <= n_sources for n in numbers), (numbers, n_sources)  # invalid dropped
    cited = [c["n"] for c in final["citations"]]
    assert cited == list(dict.fromkeys(numbers)), final  # in order of first citation
    for c in final["citations"]:
        assert c["source"] and c["chunk_id"] and c["text"] and c["page"] >= 1


def test_a_streamed_llm_answer_arrives_token_by_token_then_whole(api: httpx.Client) -> None:
    events = stream(api, "/ask", {"question": QUESTION, "corpus": CORPUS, "top_k": 3,
                                  "use_cache": False})
    names = [name for name, _ in events]
    assert names[0] == "retrieval" and names[-1] == "final", names
    assert "error" not in names
    sources = events[0][1]["sources"]
    assert [s["n"] for s in sources] == [1, 2, 3]
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) >= 3, tokens  # streamed, not one block
    final = events[-1][1]
    assert final["generator"] == "openai" and final["model"]
    assert (final["abstained"], final["fallback"], final["fallback_reason"]) == (False, False, None)
    assert final["answer"].replace(" [unsupported]", "") == "".join(tokens)
    check_citations(final, len(sources))
    citation_events = [data["n"] for name, data in events if name == "citation"]
    assert citation_events == [c["n"] for c in final["citations"]]
    # Each citation event comes after the token that first cites it.
    for name_index, (name, data) in enumerate(events):
        if name == "citation":
            text_before = "".join(d["text"] for n, d in events[:name_index] if n == "token")
            assert f"[{data['n']}]" in text_before


def test_llm_answers_are_cached_under_the_generator(api: httpx.Client) -> None:
    body = {"question": "What does the Crawler of PaSa do?", "corpus": CORPUS, "top_k": 3}
    first = api.post("/ask", json=body).json()
    second = api.post("/ask", json=body).json()
    assert first["generator"] == "openai" and first["fallback"] is False, first
    assert (first["cache_info"]["answer_hit"], second["cache_info"]["answer_hit"]) == (False, True)
    assert second["answer"] == first["answer"]
    check_citations(first, 3)
    streamed = stream(api, "/ask", body)
    assert [name for name, _ in streamed] == ["final"]  # a cached answer: one event
    assert streamed[0][1]["answer"] == first["answer"]


def test_of_two_identical_cold_streams_one_generates_and_the_other_gets_its_answer(
    api: httpx.Client,
) -> None:
    body = {"question": "What does the Selector of PaSa decide?", "corpus": CORPUS, "top_k": 3}
    holder_started = threading.Event()
    results: dict[str, list[tuple[str, dict]]] = {}

    def first() -> None:
        def mark(events: list[tuple[str, dict]]) -> None:
            holder_started.set()

        results["first"] = stream(api, "/ask", body, on_event=mark)

    thread = threading.Thread(target=first)
    thread.start()
    # The first request holds the answer's single flight from before its `retrieval` event.
    assert holder_started.wait(240)
    results["second"] = stream(api, "/ask", body)
    thread.join(300)
    first_names = [name for name, _ in results["first"]]
    assert first_names[0] == "retrieval" and "token" in first_names, first_names
    assert [name for name, _ in results["second"]] == ["final"]
    waited = results["second"][0][1]
    assert waited["cache_info"]["answer_hit"] is True
    assert waited["answer"] == results["first"][-1][1]["answer"]


def test_an_off_topic_question_abstains_without_calling_the_llm(api: httpx.Client) -> None:
    events = stream(api, "/ask", {"question": "What is the capital of France?",
                                  "corpus": CORPUS, "use_cache": False})
    final = events[-1][1]
    assert final["abstained"] is True and final["citations"] == []
    assert "do not seem to cover" in final["answer"]
    assert [name for name, _ in events] == ["retrieval", "token", "final"]


def test_a_chat_follow_up_is_answered_by_the_llm(api: httpx.Client) -> None:
    first = api.post("/chat", json={"message": QUESTION, "corpus": CORPUS, "top_k": 3}).json()
    events = stream(api, "/chat", {"message": "How is it trained?",
                                   "session_id": first["session_id"], "top_k": 3})
    final = events[-1][1]
    assert final["session_id"] == first["session_id"]
    assert final["rewritten_query"] and "PaSa" in final["rewritten_query"]
    assert final["generator"] == "openai"
    check_citations(final, 3)
    messages = api.get(f"/chat/{first['session_id']}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"] * 2
    assert messages[3]["content"] == final["answer"]
    assert messages[3]["citations"] == final["citations"]


def test_a_server_dying_mid_answer_falls_back_to_the_extractive_answer(
    api: httpx.Client, llama: LlamaServerProcess
) -> None:
    """Kept last: it kills the module's llama.cpp server."""
    body = {"question": "How does PaSa decide which papers to expand?", "corpus": CORPUS,
            "top_k": 3, "use_cache": True}
    events = stream(api, "/ask", body, on_token=llama.stop)
    names = [name for name, _ in events]
    assert names[0] == "retrieval" and names[-1] == "final" and "token" in names, names
    final = events[-1][1]
    assert final["fallback"] is True, final
    assert final["fallback_reason"] in REASONS and final["fallback_reason"] != "connection_refused"
    assert final["generator"] == "openai"  # the configured one failed; the text is extractive
    assert final["answer"] and final["citations"], final
    assert final["invalid_citations"] == 0
    # Fallback answers are not cached; with the server gone the next try is refused at once.
    again = api.post("/ask", json=body).json()
    assert again["cache_info"]["answer_hit"] is False
    assert (again["fallback"], again["fallback_reason"]) == (True, "connection_refused")
    assert again["answer"] == final["answer"]  # the same extractive answer
