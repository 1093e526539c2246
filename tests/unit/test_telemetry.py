"""Request ids, request timing and log lines, without a server: the ASGI messages the
middleware passes on, the metric it counts, the JSON a log line becomes."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.api.observability import RequestTelemetry
from shared.telemetry import metrics
from shared.telemetry.logging import (
    REQUEST_ID,
    JsonFormatter,
    TextFormatter,
    bind_job,
    configure_logging,
)


@pytest.fixture(autouse=True)
def no_pending_counts():
    metrics._DELTAS.take()
    yield
    metrics._DELTAS.take()


def http_counts() -> dict[tuple[str, ...], float]:
    """(method, route, status) -> requests counted, from this process's pending deltas."""
    out = {}
    for (name, field), value in metrics.pending().items():
        parts = json.loads(field)
        if name == metrics.HTTP_REQUEST_DURATION.name and parts[-1] == "count":
            out[tuple(parts[:-1])] = value
    return out


def scope(path: str = "/stream", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "method": "GET", "path": path, "headers": headers or [],
            "query_string": b""}


def run_middleware(app, scope_: dict) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(RequestTelemetry(app)(scope_, receive, send))
    return sent


def test_a_streamed_body_passes_through_message_by_message_and_is_timed_at_its_end() -> None:
    counted_while_streaming: list[dict] = []

    async def app(scope_, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": f"data: {i}\n\n".encode(),
                        "more_body": True})
            counted_while_streaming.append(http_counts())
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    sent = run_middleware(app, scope())
    assert [m["type"] for m in sent] == ["http.response.start"] + ["http.response.body"] * 4
    assert [m.get("body") for m in sent[1:]] == [b"data: 0\n\n", b"data: 1\n\n", b"data: 2\n\n", b""]
    assert [m.get("more_body") for m in sent[1:]] == [True, True, True, False]
    assert counted_while_streaming == [{}, {}, {}]  # nothing observed before the end
    assert http_counts() == {("GET", "unmatched", "200"): 1.0}


def test_the_request_id_is_echoed_taken_from_the_caller_or_made_up() -> None:
    async def app(scope_, receive, send) -> None:
        seen.append(REQUEST_ID.get())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    seen: list[str | None] = []
    given = run_middleware(app, scope(headers=[(b"x-request-id", b"abc-123")]))
    made = run_middleware(app, scope(headers=[(b"x-request-id", b"bad id\x7f")]))
    given_header = dict(given[0]["headers"])[b"x-request-id"]
    made_header = dict(made[0]["headers"])[b"x-request-id"]
    assert given_header == b"abc-123"
    assert seen[0] == "abc-123"
    assert len(made_header) == 32 and made_header.decode() == seen[1]
    assert REQUEST_ID.get() is None  # reset after the request


def test_a_route_is_counted_by_its_template_and_an_error_as_500() -> None:
    app = FastAPI()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    def item(item_id: str) -> dict:
        return {"id": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), media_type="text/plain")

    app.include_router(items)
    app.add_middleware(RequestTelemetry)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/items/1").headers["x-request-id"]
        client.get("/items/2")
        assert client.get("/stream").text == "ab"
        assert client.get("/boom").status_code == 500
        assert client.get("/nowhere").status_code == 404
    assert http_counts() == {
        ("GET", "/items/{item_id}", "200"): 2.0,
        ("GET", "/stream", "200"): 1.0,
        ("GET", "/boom", "500"): 1.0,
        ("GET", "unmatched", "404"): 1.0,
    }


def test_histograms_render_cumulative_buckets_and_counters_their_totals() -> None:
    metrics.observe(metrics.TASK_DURATION, 0.07, "rag.parse", "success")
    metrics.observe(metrics.TASK_DURATION, 3.0, "rag.parse", "success")
    metrics.observe(metrics.TASK_DURATION, 999.0, "rag.parse", "success")
    metrics.inc(metrics.TASKS, "rag.parse", "success", amount=3)
    values = {
        name: {tuple(json.loads(f)): v for (n, f), v in metrics.pending().items() if n == name}
        for name in (metrics.TASK_DURATION.name, metrics.TASKS.name)
    }
    text = metrics.render([
        metrics._histogram(metrics.TASK_DURATION, values[metrics.TASK_DURATION.name]),
        metrics._counter(metrics.TASKS, values[metrics.TASKS.name]),
    ]).decode()
    samples = {
        (sample.name, sample.labels.get("le")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("task") == "rag.parse" and sample.labels.get("outcome") == "success"
    }
    bucket = "rag_task_duration_seconds_bucket"
    assert [samples[(bucket, le)] for le in ("0.05", "0.1", "5.0", "300.0", "+Inf")] == [
        0, 1, 2, 2, 3
    ]
    assert samples[("rag_task_duration_seconds_count", None)] == 3
    assert samples[("rag_task_duration_seconds_sum", None)] == pytest.approx(1002.07)
    assert samples[("rag_tasks_total", None)] == 3
    assert "# TYPE rag_tasks_total counter" in text


def test_wrong_label_counts_and_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="takes labels"):
        metrics.inc(metrics.TASKS, "rag.parse")
    with pytest.raises(ValueError, match="histogram"):
        metrics.inc(metrics.TASK_DURATION, "rag.parse", "success")
    with pytest.raises(ValueError, match="counter"):
        metrics.observe(metrics.TASKS, 1.0, "rag.parse", "success")


def test_record_llm_request_counts_outcomes_and_times_first_tokens() -> None:
    metrics.record_llm_request("ok", 0.8)
    metrics.record_llm_request("fallback", None)
    pending = metrics.pending()
    assert pending[(metrics.LLM_REQUESTS.name, '["ok"]')] == 1
    assert pending[(metrics.LLM_REQUESTS.name, '["fallback"]')] == 1
    assert pending[(metrics.LLM_TIME_TO_FIRST_TOKEN.name, '["count"]')] == 1
    assert pending[(metrics.LLM_TIME_TO_FIRST_TOKEN.name, '["le:1.0"]')] == 1


def _record(message: str, *, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("rag.test", logging.WARNING, __file__, 1, message, (), exc_info)


def test_a_json_line_has_time_level_role_and_the_ids_in_context() -> None:
    configure_logging("worker", "json")
    try:
        token = REQUEST_ID.set("req-1")
        with bind_job("job-9"):
            line = json.loads(JsonFormatter().format(_record("parsed %s")))
            failed = json.loads(JsonFormatter().format(_record("oops", exc=True)))
        REQUEST_ID.reset(token)
        plain = json.loads(JsonFormatter().format(_record("idle")))
    finally:
        logging.getLogger().handlers[:] = [
            h for h in logging.getLogger().handlers if h.get_name() != "rag"
        ]
    assert line["level"] == "warning" and line["role"] == "worker" and line["msg"] == "parsed %s"
    assert (line["job_id"], line["request_id"]) == ("job-9", "req-1")
    assert line["ts"].endswith("Z") and "T" in line["ts"]
    assert "ValueError: bad value" in failed["exc"]
    assert "job_id" not in plain and "request_id" not in plain


def test_a_text_line_names_the_role_and_the_job() -> None:
    with bind_job("job-3"):
        text = TextFormatter().format(_record("embedding"))
    assert "WARNING" in text and "embedding" in text and "[job=job-3]" in text
