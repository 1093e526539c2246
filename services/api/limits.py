"""Request body size limits, as pure ASGI middleware.

A JSON body may be RAG_MAX_BODY_MB; an upload (POST /ingest/upload) RAG_MAX_UPLOAD_MB plus a
little room for the multipart framing. A Content-Length over the limit is refused with 413
before a byte is read; a body without one (chunked) is counted as its `http.request` messages
arrive, and the read that crosses the limit raises a 413 in the route that is reading it. Only
`receive` is wrapped: responses, server-sent events included, pass through untouched.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATH = "/ingest/upload"
_MULTIPART_ROOM = 1 << 20  # part headers and boundaries around the files


class BodyTooLargeError(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(status_code=413, detail=detail)


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_body_mb: float, max_upload_mb: float) -> None:
        self.app = app
        self.max_body = int(max_body_mb * 2**20)
        self.max_upload = int(max_upload_mb * 2**20) + _MULTIPART_ROOM
        self._body_rule = f"RAG_MAX_BODY_MB={max_body_mb:g}"
        self._upload_rule = f"RAG_MAX_UPLOAD_MB={max_upload_mb:g}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        upload = scope["path"].rstrip("/").endswith(UPLOAD_PATH)
        limit = self.max_upload if upload else self.max_body
        detail = (
            f"request body over the limit {self._upload_rule if upload else self._body_rule}"
        )
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = JSONResponse(
                {"error": "payload_too_large", "detail": detail},
                status_code=413,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(detail)
            return message

        await self.app(scope, counted, send)
