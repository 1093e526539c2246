"""The ollama generator through the API: Ollama's native /api/chat protocol, served by the
scripted protocol server in tests/support/ollama_server.py (split lines, error lines)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import ingest
from tests.support.ollama_server import OllamaTestServer, Reply
from tests.support.service import LiveService

pytestmark = [pytest.mark.integration]

CORPUS = "ollama-notes"
MODEL = "smollm2:135m"
NOTE = (
    "# PaSa agents\n\nPaSa consists of two LLM agents, the Crawler and the Selector. The Crawler "
    "processes the user query and collects papers into a paper queue. The Selector reads each "
    "paper in the queue and decides whether it meets the criteria of the user query.\n"
)
QUESTION = "What are the two agents of PaSa?"


@pytest.fixture(scope="module")
def ollama() -> Iterator[OllamaTestServer]:
    with OllamaTestServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(
    redis_url: str, ollama: OllamaTestServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("ollama-root")
    (root / "notes").mkdir()
    (root / "notes" / "pasa.md").write_text(NOTE, encoding="utf-8")
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("ollama-data"),
        corpus_root=root,
        workers=1,
        key_prefix=f"t{uuid.uuid4().hex[:6]}",
        env={"RAG_GENERATOR": "ollama", "RAG_OLLAMA_URL": ollama.url, "RAG_LLM_MODEL": MODEL,
             "RAG_LLM_FIRST_TOKEN_TIMEOUT_S": "30", "RAG_LLM_TOTAL_TIMEOUT_S": "60"},
    )
    live.start()
    try:
        with httpx.Client(base_url=live.url, timeout=120) as client:
            assert ingest(client, root / "notes", CORPUS)["state"] == "succeeded"
            yield client
    finally:
        live.stop()


def _events(client: httpx.Client, body: dict) -> list[tuple[str, dict]]:
    events = []
    with client.stream("POST", "/ask", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200
        name = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_split_lines_are_joined_into_the_answer(api: httpx.Client, ollama: OllamaTestServer) -> None:
    ollama.enqueue(Reply(tokens=("PaSa has a Crawler", " and a Selector", " [1]", " – both agents."),
                         split_lines=True))
    events = _events(api, {"question": QUESTION, "corpus": CORPUS, "use_cache": False})
    final = events[-1][1]
    assert (final["generator"], final["model"], final["fallback"]) == ("ollama", MODEL, False)
    assert final["answer"] == "PaSa has a Crawler and a Selector [1] – both agents."
    assert [c["n"] for c in final["citations"]] == [1]
    assert [name for name, _ in events if name == "citation"] == ["citation"]
    sent = ollama.requests[-1]
    assert sent["model"] == MODEL and sent["stream"] is True
    assert QUESTION in sent["messages"][-1]["content"]  # the question, with its sources
    assert "[1]" in sent["messages"][-1]["content"]


def test_an_error_line_mid_answer_falls_back(api: httpx.Client, ollama: OllamaTestServer) -> None:
    ollama.enqueue(Reply(tokens=("The Crawler", " collects", " papers [1]."), error_after=2))
    body = {"question": "What does the Crawler of PaSa do?", "corpus": CORPUS}
    events = _events(api, body)
    final = events[-1][1]
    assert (final["fallback"], final["fallback_reason"]) == (True, "stream_error")
    assert "Crawler" in final["answer"] and final["citations"]  # the extractive answer
    # Not cached: the next asker gets the model again.
    again = api.post("/ask", json=body).json()
    assert again["cache_info"]["answer_hit"] is False
    assert (again["generator"], again["fallback"]) == ("ollama", False)


def test_a_server_error_is_retried_once_then_served(api: httpx.Client, ollama: OllamaTestServer) -> None:
    ollama.enqueue(Reply(status=503, error="loading model"), Reply(tokens=("Two agents [1].",)))
    final = api.post("/ask", json={"question": "How many agents has PaSa?", "corpus": CORPUS,
                                   "use_cache": False}).json()
    assert (final["answer"], final["fallback"]) == ("Two agents [1].", False)
