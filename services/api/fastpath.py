"""Cache hits of POST /search and POST /ask, served before FastAPI's routing and validation.

A pure ASGI layer: it reads the (small) JSON body, accepts only a request it understands
exactly (the documented fields, of the documented types; no streaming), authenticates and
rate-limits it with the same `Guard` the routes use, and looks the cache up in one Redis round
trip. A hit is answered here. Anything else (a miss, an odd body, an auth failure, Redis out
of reach) goes on to FastAPI with the body replayed, carrying what was already done in the request's scope state
(`rag.principal`, `rag.lookup`) so the route neither counts a second lookup nor takes a second
rate-limit token. It never wraps a response, so streams pass untouched.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.cache_hits import hit_body
from services.api.errors import unavailable_component
from services.api.schemas import AskRequest, SearchRequest
from shared.auth import Role
from shared.errors import RagError
from shared.identity import CORPUS_NAME

MAX_BODY = 16 * 1024  # larger bodies are unusual for a query: FastAPI handles them
_MODELS: dict[str, type[BaseModel]] = {"/search": SearchRequest, "/ask": AskRequest}
PRINCIPAL = "rag.principal"
LOOKUP = "rag.lookup"


class CacheHitFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        if scope["type"] != "http" or scope["method"] != "POST" or path not in _MODELS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_BODY:
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        replay = _replayer(messages, receive)
        ctx = getattr(scope["app"].state, "ctx", None)
        request = _parse(path, body)
        if ctx is None or request is None or not ctx.cache_lookup.enabled:
            await self.app(scope, replay, send)
            return
        state = scope.setdefault("state", {})
        try:
            principal = ctx.guard.authenticate(
                headers, required_role=Role.READER, corpus=request["corpus"]
            )
        except RagError:
            await self.app(scope, replay, send)  # the route answers with the right error
            return
        try:
            await ctx.guard.rate_limit(principal)
        except RagError as exc:
            scope["route"] = _Served(path)
            await _send_error(send, exc)
            return
        except Exception as exc:
            if unavailable_component(exc) is None:
                raise
            await self.app(scope, replay, send)  # the route answers 503, naming what is down
            return
        state[PRINCIPAL] = principal
        if path == "/search":
            cache = ctx.retriever.cache
            tier = "retrieval"
            parts = ctx.retriever.cache_parts(
                mode=request["mode"], query=request["query"], top_k=request["top_k"]
            )
        else:
            cache = ctx.answerer.cache
            tier = "answers"
            parts = ctx.answerer.cache_parts(question=request["question"], top_k=request["top_k"])
        try:
            version, raw = await ctx.cache_lookup(cache, request["corpus"], parts)
        except Exception as exc:
            if unavailable_component(exc) is None:
                raise
            await self.app(scope, replay, send)  # the route answers 503, naming what is down
            return
        if raw is None:
            state[LOOKUP] = ((request["corpus"], parts), version)
            await self.app(scope, replay, send)
            return
        scope["route"] = _Served(path)  # the route template request metrics are labelled with
        await _send_json(send, 200, hit_body(raw, tier=tier, version=version))


class _Served:
    """Stands for the route a request answered here would have reached."""

    def __init__(self, path: str) -> None:
        self.path = path


def _parse(path: str, body: bytes) -> dict[str, Any] | None:
    """The request's fields with defaults, when it is exactly a cacheable one; else None.

    Validated by the routes' own request models, so a hit is served only for a body the
    route would accept as it stands (unknown fields, which the route ignores, go on to it)."""
    model = _MODELS[path]
    try:
        data = json.loads(body)
        if not isinstance(data, dict) or not set(data) <= set(model.model_fields):
            return None
        out = model.model_validate(data).model_dump()
    except (ValueError, UnicodeDecodeError):  # pydantic's ValidationError is a ValueError
        return None
    text = out["query" if path == "/search" else "question"]
    if (
        not text.strip()
        or out.get("stream")
        or not out["use_cache"]
        or not CORPUS_NAME.fullmatch(out["corpus"])
    ):
        return None
    return out


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > MAX_BODY:
            break
    return b"".join(chunks), messages


def _replayer(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _send_json(send: Send, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, exc: RagError) -> None:
    body = json.dumps({"error": exc.code, "detail": exc.detail}).encode()
    await _send_json(send, exc.status, body, exc.headers())
