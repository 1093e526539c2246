"""Answers as server-sent events (POST /ask and POST /chat with "stream": true).

The answerer is blocking code: it runs in a worker thread and hands each event to the event
loop through a queue. Events: `retrieval`, `token`, `citation`, then `final` (the whole
response object) or `error` ({"error", "detail"}); a comment line every few seconds while
the model is silent keeps proxies from closing the stream. A client that disconnects sets
the answer's cancel flag: the LLM request is closed and nothing is cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from sse_starlette.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from services.api.errors import unavailable_component
from shared.errors import RagError
from shared.search.answerer import AnswerCancelled, Emit

log = logging.getLogger(__name__)

HEARTBEAT_S = 5
HEADERS = {"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}
# Documented on the routes that stream.
STREAMED: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "JSON, or with \"stream\": true, events: retrieval, token, citation, "
        "then final (the same object) or error.",
    }
}
_running: set[asyncio.Future[None]] = set()  # worker threads' tasks, kept until they finish

Answering = Callable[[Emit, threading.Event], dict[str, Any]]


def sse_answer(answering: Answering) -> EventSourceResponse:
    """Run `answering(emit, cancel)` in a thread and stream what it emits, then its result."""
    return EventSourceResponse(_events(answering), ping=HEARTBEAT_S, headers=HEADERS)


def sse_final(body: bytes) -> EventSourceResponse:
    """A cached answer: one `final` event."""

    async def once() -> AsyncIterator[ServerSentEvent]:
        yield ServerSentEvent(data=body.decode(), event="final")

    return EventSourceResponse(once(), ping=HEARTBEAT_S, headers=HEADERS)


async def _events(answering: Answering) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue()
    cancel = threading.Event()

    def post(item: tuple[str, Any] | None) -> None:
        try:
            loop.call_soon_threadsafe(inbox.put_nowait, item)
        except RuntimeError:  # the loop is gone (server shutting down): nobody listens
            cancel.set()

    def emit(name: str, data: dict[str, Any]) -> None:
        post((name, data))

    def work() -> None:
        try:
            post(("final", answering(emit, cancel)))
        except AnswerCancelled:
            pass
        except RagError as exc:
            post(("error", {"error": exc.code, "detail": exc.detail}))
        except Exception as exc:  # as the error handlers answer: no exception text
            if component := unavailable_component(exc):
                log.warning("%s unreachable during an answer stream: %s", component, exc)
                post(("error", {"error": "service_unavailable",
                                "detail": f"{component} is unreachable; try again shortly"}))
            else:
                error_id = uuid.uuid4().hex[:12]
                log.error("answer stream failed, error id %s", error_id, exc_info=exc)
                post(("error", {"error": "internal_error", "error_id": error_id,
                                "detail": "unexpected error; the server log has the details "
                                f"under error id {error_id}"}))
        finally:
            post(None)

    task = asyncio.ensure_future(run_in_threadpool(work))
    _running.add(task)
    task.add_done_callback(_running.discard)
    try:
        while (item := await inbox.get()) is not None:
            name, data = item
            yield ServerSentEvent(data=json.dumps(data, separators=(",", ":")), event=name)
    finally:
        cancel.set()  # the client went away, or the stream ended: stop the answer
