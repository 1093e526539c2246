"""The API's error mapping, body limits and admission gate, on a small app in process."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient

from services.api.admission import QueryGate
from services.api.errors import install_error_handlers
from services.api.limits import BodyLimit
from services.api.schemas import AskRequest, IngestStart, SearchRequest
from shared.errors import ServiceUnavailableError


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_body_mb=0.01, max_upload_mb=0.05)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail at /srv/rag/data/store")

    @app.get("/redis-down")
    def redis_down() -> None:
        raise redis.ConnectionError("Error 111 connecting to 10.0.0.5:6379. Connection refused.")

    @app.post("/echo")
    def echo(body: SearchRequest) -> dict[str, str]:
        return {"query": body.query}

    @app.post("/ingest/upload")
    async def upload(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/stream")
    def stream() -> StreamingResponse:
        events = (f"data: {i}\n\n" for i in range(3))
        return StreamingResponse(events, media_type="text/event-stream")

    return app


@pytest.fixture()
def client() -> TestClient:
    return TestClient(_app(), raise_server_exceptions=False)


def test_an_unexpected_error_is_a_500_with_an_id_the_log_prints(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="services.api.errors"):
        resp = client.get("/boom")
    assert resp.status_code == 500
    body = resp.json()
    assert body["error"] == "internal_error"
    assert "secret" not in resp.text and "/srv" not in resp.text
    error_id = body["error_id"]
    assert error_id in body["detail"]
    [record] = [r for r in caplog.records if error_id in r.getMessage()]
    assert record.exc_info is not None and "secret detail" in str(record.exc_info[1])


def test_redis_out_of_reach_is_a_503_naming_it_without_the_exception_text(
    client: TestClient,
) -> None:
    resp = client.get("/redis-down")
    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"
    assert resp.json() == {"error": "service_unavailable",
                           "detail": "Redis is unreachable; try again shortly"}


def test_405_carries_allow(client: TestClient) -> None:
    resp = client.delete("/echo")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"
    assert resp.json()["error"] == "method_not_allowed"


def test_bodies_over_the_limit_are_413_announced_or_not(client: TestClient) -> None:
    big = b'{"query": "' + b"x" * 20_000 + b'"}'
    resp = client.post("/echo", content=big, headers={"content-type": "application/json"})
    assert resp.status_code == 413
    assert resp.json() == {"error": "payload_too_large",
                           "detail": "request body over the limit RAG_MAX_BODY_MB=0.01"}
    chunked = client.post("/echo", content=iter([big[:8000], big[8000:]]),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413
    assert "RAG_MAX_BODY_MB" in chunked.json()["detail"]
    assert client.post("/echo", json={"query": "fine"}).json() == {"query": "fine"}


def test_uploads_have_their_own_limit(client: TestClient) -> None:
    assert client.post("/ingest/upload", content=b"x" * 30_000).json() == {"bytes": 30_000}
    resp = client.post("/ingest/upload", content=b"x" * (2 << 20))
    assert resp.status_code == 413
    assert "RAG_MAX_UPLOAD_MB=0.05" in resp.json()["detail"]


def test_streaming_responses_pass_the_body_limit_untouched(client: TestClient) -> None:
    with client.stream("GET", "/stream") as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert list(resp.iter_lines()) == ["data: 0", "", "data: 1", "", "data: 2", ""]


@pytest.mark.parametrize(
    "model,body,field",
    [
        (SearchRequest, {"query": "a \ud800"}, "query"),
        (AskRequest, {"question": "x" * 4001}, "question"),
        (IngestStart, {"path": "pa\x00pers"}, "path"),
        (IngestStart, {"path": "   "}, "path"),
        (SearchRequest, {"query": "x", "corpus": "c" * 65}, "corpus"),
        (SearchRequest, {"query": "x", "use_cache": 0}, "use_cache"),
        (SearchRequest, {"query": "x", "top_k": "5"}, "top_k"),
    ],
)
def test_request_fields_refuse_what_the_service_cannot_carry(model, body, field) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert [e["loc"][0] for e in refused.value.errors()] == [field]


def test_the_gate_runs_a_bounded_number_and_turns_the_rest_away() -> None:
    async def scenario() -> list[str]:
        gate = QueryGate(limit=1, timeout_s=0.05)
        outcomes: list[str] = []
        release = asyncio.Event()

        async def query(name: str) -> None:
            try:
                async with gate.slot():
                    outcomes.append(f"{name} ran")
                    await release.wait()
            except ServiceUnavailableError as exc:
                assert exc.retry_after_s >= 1
                assert "RAG_MAX_CONCURRENT_QUERIES" in exc.detail
                outcomes.append(f"{name} turned away")

        first = asyncio.create_task(query("first"))
        await asyncio.sleep(0)
        await query("second")  # waits 50 ms for the only slot, then gives up
        assert gate.stats() == {"running": 1, "waiting": 0, "limit": 1}
        release.set()
        await first
        await query("third")
        return outcomes

    assert asyncio.run(scenario()) == ["first ran", "second turned away", "third ran"]


def test_a_streamed_answer_holds_its_slot_until_its_thread_ends() -> None:
    from services.api.admission import gated, release_if_never_started

    async def scenario() -> list[dict[str, int]]:
        gate = QueryGate(limit=1, timeout_s=0.05)
        seen = []
        slot = await gate.acquire()
        answering = gated(slot, lambda emit, cancel: {"answer": "ok"})
        seen.append(gate.stats())  # taken before the stream opens
        result = await asyncio.to_thread(answering, lambda *_: None, threading.Event())
        assert result == {"answer": "ok"}
        await asyncio.sleep(0)  # the thread hands the release to the loop
        seen.append(gate.stats())
        await release_if_never_started(slot)()  # the response's background: nothing more
        seen.append(gate.stats())
        # a client gone before the worker thread began: the background gives the slot back
        never = await gate.acquire()
        await release_if_never_started(never)()
        seen.append(gate.stats())
        return seen

    running = [s["running"] for s in asyncio.run(scenario())]
    assert running == [1, 0, 0, 0]
