"""Request ids and request metrics for every HTTP request, and the API's metrics flusher.

`RequestTelemetry` is a pure ASGI middleware: it looks at the messages going out and never
wraps, buffers or re-sends a body, so event streams pass through as they are written.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.telemetry import metrics
from shared.telemetry.logging import REQUEST_ID

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_USABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
FLUSH_INTERVAL_S = 2.0


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if usable, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER_BYTES:
            text = value.decode("latin-1").strip()
            return text if _USABLE_ID.fullmatch(text) else uuid.uuid4().hex
    return uuid.uuid4().hex


def observe_request(scope: Scope, status: int, start: float) -> None:
    """The request into rag_http_request_duration_seconds, by route template."""
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    metrics.record_http_request(
        method=scope["method"], route=route, status=status, duration_s=time.perf_counter() - start
    )


class RequestTelemetry:
    """Binds a request id (the caller's X-Request-ID if usable, else a new one), echoes it in
    the response, and times the request into rag_http_request_duration_seconds by route
    template: the status is read from http.response.start, the time taken when the last
    body message has gone out (or when the app returns, if it never got there)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        token = REQUEST_ID.set(request_id)
        start = time.perf_counter()
        status = 0
        observed = False

        def observe(code: int) -> None:
            nonlocal observed
            if observed:
                return
            observed = True
            observe_request(scope, code, start)

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                observe(status)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            observe(status or 500)  # the app raised before answering, or the client left
            REQUEST_ID.reset(token)


async def flush_metrics_forever(interval_s: float = FLUSH_INTERVAL_S) -> None:
    """This process's counts into Redis every few seconds (and a last time when cancelled)."""
    try:
        while True:
            await asyncio.sleep(interval_s)
            await run_in_threadpool(metrics.flush)
    finally:
        metrics.flush()
