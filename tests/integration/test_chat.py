"""POST /chat and its sessions: follow-ups, history, export, deletion, ownership, limits."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from shared.errors import NotFoundError
from shared.keys import Keys
from shared.state.sessions import ChatSessions
from tests.support.service import REPO, LiveService

FIRST = "What is PaSa and how does it search for papers?"


def _stream(url: str, body: dict) -> list[tuple[str, dict]]:
    events = []
    with httpx.stream("POST", f"{url}/chat", json={**body, "stream": True}, timeout=120) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name:
                events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_a_follow_up_is_rewritten_and_the_session_keeps_both_turns(
    api: httpx.Client, papers_job: dict
) -> None:
    first = api.post("/chat", json={"message": FIRST, "corpus": "papers"}).json()
    session = first["session_id"]
    assert first["rewritten_query"] is None  # a standalone question
    assert first["citations"] and "pasa.pdf" in {Path(c["source"]).name for c in first["citations"]}
    second = api.post("/chat", json={"message": "What are its limitations?",
                                     "session_id": session}).json()
    assert second["session_id"] == session
    assert second["rewritten_query"].startswith("What are its limitations? ")
    assert "PaSa" in second["rewritten_query"]
    # Searched with the rewrite as well, so the answer stays with the paper in question.
    assert "pasa.pdf" in {Path(c["source"]).name for c in second["citations"]}, second

    view = api.get(f"/chat/{session}").json()
    assert (view["session_id"], view["corpus"], view["generator"]) == (session, "papers", "extractive")
    messages = view["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", FIRST), ("assistant", first["answer"]),
        ("user", "What are its limitations?"), ("assistant", second["answer"]),
    ]
    assert messages[2]["rewritten_query"] == second["rewritten_query"]
    for message, answer in ((messages[1], first), (messages[3], second)):
        assert message["citations"] == answer["citations"]
        assert message["cache_info"] == answer["cache_info"]
        assert message["abstained"] is False and message["fallback"] is False


def test_export_is_a_header_then_one_line_per_message(api: httpx.Client, papers_job: dict) -> None:
    first = api.post("/chat", json={"message": FIRST, "corpus": "papers"}).json()
    session = first["session_id"]
    api.post("/chat", json={"message": "And its training data?", "session_id": session})
    resp = api.get(f"/chat/{session}/export")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert len(lines) == 5
    header = lines[0]
    assert header["session_id"] == session and header["corpus"] == "papers"
    assert header["generator"] == "extractive" and "model" in header
    assert header["created"] <= time.time()
    assert [m["role"] for m in lines[1:]] == ["user", "assistant", "user", "assistant"]
    assert lines[2]["citations"] == first["citations"] and "cache_info" in lines[2]


def test_deleting_a_session_makes_it_unknown(api: httpx.Client, papers_job: dict) -> None:
    session = api.post("/chat", json={"message": FIRST, "corpus": "papers"}).json()["session_id"]
    assert api.delete(f"/chat/{session}").status_code == 204
    for resp in (
        api.get(f"/chat/{session}"),
        api.get(f"/chat/{session}/export"),
        api.delete(f"/chat/{session}"),
        api.post("/chat", json={"message": "and then?", "session_id": session}),
    ):
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_found"
    assert api.get("/chat/not-a-session-id").status_code == 404


def test_a_streamed_turn_sends_the_ask_events_and_the_session(
    service: LiveService, api: httpx.Client, papers_job: dict
) -> None:
    events = _stream(service.url, {"message": FIRST, "corpus": "papers", "use_cache": False})
    names = [name for name, _ in events]
    assert names[0] == "retrieval" and names[-1] == "final" and "token" in names, names
    final = events[-1][1]
    assert final["session_id"] and final["rewritten_query"] is None
    follow = _stream(service.url, {"message": "Which agents does it use?",
                                   "session_id": final["session_id"]})
    assert "PaSa" in follow[-1][1]["rewritten_query"]
    assert len(api.get(f"/chat/{final['session_id']}").json()["messages"]) == 4


def test_rag_chat_streams_a_conversation(service: LiveService, papers_job: dict, tmp_path: Path) -> None:
    export = tmp_path / "chat.ndjson"
    script = f"{FIRST}\nWhat are its limitations?\n/export {export}\n/quit\n"
    env = {**os.environ, "RAG_API_URL": service.url, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "services.cli.main", "chat", "--corpus", "papers"],
                          input=script, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "pasa.pdf" in done.stdout
    assert "searched for: What are its limitations? " in done.stderr
    lines = export.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["corpus"] == "papers"


# ---- the session store against a real Valkey -----------------------------------------------------


@pytest.fixture()
def sessions(redis_url: str) -> Iterator[tuple[ChatSessions, redis.Redis, Keys]]:
    client = redis.Redis.from_url(redis_url)
    keys = Keys(f"t{uuid.uuid4().hex[:6]}")
    yield ChatSessions(client, keys, ttl_s=120, max_messages=4), client, keys
    client.close()


def test_sessions_keep_the_last_messages_and_expire_together(sessions) -> None:
    store, client, keys = sessions
    session = store.create(corpus="papers", owner="k1", generator="extractive", model=None)
    for i in range(3):
        store.append(session, [{"role": "user", "content": f"q{i}"},
                               {"role": "assistant", "content": f"a{i}"}])
    assert [m["content"] for m in store.messages(session.session_id)] == ["q1", "a1", "q2", "a2"]
    for key in (keys.chat_session(session.session_id), keys.chat_messages(session.session_id)):
        assert 0 < client.ttl(key) <= 120


def test_a_session_is_invisible_to_other_keys(sessions) -> None:
    store, _, _ = sessions
    session = store.create(corpus="papers", owner="k1", generator="extractive", model=None)
    assert store.get(session.session_id, owner="k1") == session
    with pytest.raises(NotFoundError):
        store.get(session.session_id, owner="k2")
    with pytest.raises(NotFoundError):
        store.delete(session.session_id, owner="k2")
    store.get(session.session_id, owner="k1")  # still there


def test_a_turn_ending_after_its_session_expired_is_not_stored(sessions) -> None:
    store, client, keys = sessions
    session = store.create(corpus="papers", owner="k1", generator="extractive", model=None)
    client.delete(keys.chat_session(session.session_id))  # what expiry does
    with pytest.raises(NotFoundError):
        store.append(session, [{"role": "user", "content": "late"}])
    assert client.exists(keys.chat_messages(session.session_id)) == 0


# ---- ownership through the API, with keys -----------------------------------------------------------


ADMIN_KEY = f"admin-{secrets.token_urlsafe(24)}"


@pytest.fixture(scope="module")
def secured(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """An API with keys on (one worker, for a healthy deployment); nothing is ingested: a turn
    over an empty corpus abstains, which is all a session needs."""
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("chat-auth-data"),
        corpus_root=tmp_path_factory.mktemp("chat-auth-root"),
        workers=1,
        key_prefix=f"t{uuid.uuid4().hex[:6]}",
        env={"RAG_AUTH": "on", "RAG_ADMIN_KEY": ADMIN_KEY},
    )
    live.start()
    yield live
    live.stop()


def test_a_session_belongs_to_the_key_that_created_it(secured: LiveService) -> None:
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=secured.url, timeout=120) as client:
        keys = [client.post("/keys", json={"role": "reader", "name": f"r{i}"}, headers=admin).json()
                for i in range(2)]
        alice, bob = ({"Authorization": f"Bearer {k['key']}"} for k in keys)
        turn = client.post("/chat", json={"message": "Anything about otters?", "corpus": "empty"},
                           headers=alice)
        assert turn.status_code == 200, turn.text
        assert turn.json()["abstained"] is True
        session = turn.json()["session_id"]
        assert client.get(f"/chat/{session}", headers=alice).status_code == 200
        for resp in (
            client.get(f"/chat/{session}", headers=bob),
            client.get(f"/chat/{session}/export", headers=bob),
            client.delete(f"/chat/{session}", headers=bob),
            client.post("/chat", json={"message": "and?", "session_id": session}, headers=bob),
        ):
            assert resp.status_code == 404, resp.text
        assert client.post("/chat", json={"message": "hi", "corpus": "empty"}).status_code == 401
        assert len(client.get(f"/chat/{session}", headers=alice).json()["messages"]) == 2
