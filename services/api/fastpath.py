"""Cache hits of POST /search and POST /ask, served at the app's front door.

`RagApp` (services/api/main.py) hands every HTTP request here before any middleware or
routing. This layer reads the (small) JSON body, accepts only a request it understands exactly
(the documented fields, of the documented types; no streaming), authenticates and rate-limits
it with the same `Guard` the routes use, and looks the cache up in one Redis round trip. A hit
is answered here. Anything else (a miss, an odd body, an auth failure, Redis out of reach) goes
on to FastAPI with the body replayed, carrying what was already done in the request's scope
state (`rag.principal`, `rag.lookup`) so the route neither counts a second lookup nor takes a
second rate-limit token. It never wraps a response, so streams pass untouched.

Being in front of the middleware, it does for what it answers what they would do: the request
id and request metrics (`observability`), the body-size cap, the trusted-host check (a host
the policy would refuse goes on, to be refused there). A request with an `Origin` header goes
on to CORS when CORS is configured. The middleware stack it skips was ~18% of a cached
answer's CPU under py-spy here; cached requests/s are in bench/cache_ask.py.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from starlette._utils import parse_host_header
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from services.api.cache_hits import hit_body
from services.api.errors import unavailable_component
from services.api.observability import observe_request, request_id_of
from services.api.schemas import AskRequest, SearchRequest
from shared.auth import Role
from shared.errors import RagError
from shared.identity import CORPUS_NAME
from shared.settings import Settings
from shared.telemetry.logging import REQUEST_ID

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024  # larger bodies are unusual for a query: FastAPI handles them
PRINCIPAL = "rag.principal"
LOOKUP = "rag.lookup"


class _ExactSearch(SearchRequest):
    model_config = ConfigDict(strict=True, extra="forbid")  # unknown fields: the route says which


class _ExactAsk(AskRequest):
    model_config = ConfigDict(strict=True, extra="forbid")


_MODELS: dict[str, type[BaseModel]] = {"/search": _ExactSearch, "/ask": _ExactAsk}


class CacheHitFastPath:
    def __init__(self, settings: Settings) -> None:
        security = settings.security
        hosts = security.trusted_hosts
        self._hosts = None if not hosts or "*" in hosts else list(hosts)
        self._cors = bool(security.cors_origins)
        self._max_body = min(MAX_BODY, int(settings.limits.max_body_mb * 2**20))

    async def __call__(self, scope: Scope, receive: Receive, send: Send, ctx: Any) -> Receive | None:
        """None when the request was answered here; else the `receive` to hand on with."""
        path = scope["path"]
        if scope["method"] != "POST" or path not in _MODELS or ctx is None:
            return receive
        headers = Headers(scope=scope)
        length = headers.get("content-length")
        if (
            length is None
            or not length.isdigit()
            or int(length) > self._max_body
            or (self._cors and "origin" in headers)
            or not self._host_allowed(headers)
            or not ctx.cache_lookup.enabled
        ):
            return receive
        start = time.perf_counter()
        body, messages = await _read_body(receive)
        replay = _replayer(messages, receive)
        request = _parse(path, body)
        if request is None:
            return replay
        try:
            principal = ctx.guard.authenticate(
                headers, required_role=Role.READER, corpus=request["corpus"]
            )
        except RagError:
            return replay  # the route answers with the right error
        state = scope.setdefault("state", {})
        try:
            await ctx.guard.rate_limit(principal)
        except RagError as exc:
            await _answer(scope, send, start, exc.status, _error_body(exc), exc.headers())
            return None
        except Exception as exc:
            if unavailable_component(exc) is None:
                log.exception("cache fast path: rate limit failed; the route takes the request")
            return replay  # the route answers (503, naming what is down)
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
                log.exception("cache fast path: lookup failed; the route takes the request")
            return replay  # the route answers (503, naming what is down)
        if raw is None:
            state[LOOKUP] = ((request["corpus"], parts), version)
            return replay
        await _answer(scope, send, start, 200, hit_body(raw, tier=tier, version=version))
        return None

    def _host_allowed(self, headers: Headers) -> bool:
        """Starlette's TrustedHostMiddleware rule; a refused host goes on to be refused there."""
        if self._hosts is None:
            return True
        parsed = parse_host_header(headers.get("host"))
        if parsed is None:
            return False
        host = parsed.host.lower()
        return any(
            host == pattern or (pattern.startswith("*") and host.endswith(pattern[1:]))
            for pattern in self._hosts
        )


async def _answer(
    scope: Scope, send: Send, start: float, status: int, body: bytes,
    extra: dict[str, str] | None = None,
) -> None:
    """The response, with what RequestTelemetry gives every response: the request id header,
    and the request timed under its route template."""
    request_id = request_id_of(scope)
    token = REQUEST_ID.set(request_id)
    scope["route"] = _Served(scope["path"])
    try:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            *((k.lower().encode(), v.encode()) for k, v in (extra or {}).items()),
            (b"x-request-id", request_id.encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    finally:
        observe_request(scope, status, start)
        REQUEST_ID.reset(token)


class _Served:
    """Stands for the route a request answered here would have reached."""

    def __init__(self, path: str) -> None:
        self.path = path


def _parse(path: str, body: bytes) -> dict[str, Any] | None:
    """The request's fields with defaults, when it is exactly a cacheable one; else None.

    Validated by the routes' own request models (plus: no unknown fields), so a hit is served
    only for a body the route would accept as it stands."""
    try:
        out = _MODELS[path].model_validate_json(body).model_dump()
    except ValidationError:
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


def _error_body(exc: RagError) -> bytes:
    return json.dumps({"error": exc.code, "detail": exc.detail}).encode()
