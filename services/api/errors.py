"""One JSON shape for every error: {"error": code, "detail": text}.

Redis or the store out of reach is a 503 naming the component, with Retry-After; any other
unexpected error is a 500 carrying an error id, which the log prints beside the traceback.
No response ever carries an exception's own text, which may quote server paths.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.api.schemas import ErrorBody
from shared.errors import RagError

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_AFTER_S = 5


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented on every route: the shapes a client must handle besides success.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Bad input: the detail names the field or file."),
    413: _error("The request body is over RAG_MAX_BODY_MB (uploads: RAG_MAX_UPLOAD_MB)."),
    422: _error("The request does not match the schema: the detail names the field."),
    500: _error("Unexpected error: the detail carries an error id to find in the server log."),
    503: {
        **_error("Redis or the store is unreachable, or the API is at capacity: try again "
                 "after Retry-After seconds."),
        "headers": {"Retry-After": {"schema": {"type": "integer"},
                                    "description": "Seconds to wait before trying again."}},
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("No such job, tier or document.")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("The job's state does not allow it.")}
TOO_LARGE: dict[int | str, dict[str, Any]] = {413: _error("Over a size limit.")}

_LOCATIONS = {"body", "query", "path", "header", "cookie"}
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _body(code: str, detail: str, status: int, *, headers: dict[str, str] | None = None,
          **extra: str) -> JSONResponse:
    # A lone surrogate echoed from the request would make the response unencodable.
    detail = detail.encode("utf-8", "replace").decode("utf-8")
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status,
                        headers=headers)


def unavailable_component(exc: BaseException) -> str | None:
    """The component an error says is out of reach, or None if it is some other error."""
    import redis
    from kombu.exceptions import OperationalError

    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return "Redis"
    if isinstance(exc, OperationalError):
        return "Redis (the task broker)"
    try:
        import httpx
        from qdrant_client.http.exceptions import ResponseHandlingException
    except ImportError:  # pragma: no cover - both are dependencies
        return None
    if isinstance(exc, (httpx.TransportError, ResponseHandlingException)):
        return "the vector store (Qdrant)"
    return None


def _unavailable_types() -> tuple[type[BaseException], ...]:
    import httpx
    import redis
    from kombu.exceptions import OperationalError
    from qdrant_client.http.exceptions import ResponseHandlingException

    return (redis.ConnectionError, redis.TimeoutError, OperationalError,
            httpx.TransportError, ResponseHandlingException)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """The methods /openapi.json documents for this path (its most specific template:
    /cache/stats, not /cache/{tier}); else every method some route serves here. Starlette's
    own Allow names only the first route that matched the path (GET and POST /keys are two
    routes)."""
    path = request.scope["path"]
    best: tuple[int, set[str]] = (-1, set())
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            literal = sum(1 for part in template.split("/") if part and "{" not in part)
            methods = {m.upper() for m in operations}
            if literal > best[0]:
                best = (literal, methods)
            elif literal == best[0]:
                best[1].update(methods)
    if best[1]:
        return ", ".join(m for m in _METHODS if m in best[1])
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError) -> JSONResponse:
        return _body(exc.code, exc.detail, exc.status, headers=exc.headers() or None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = list(err.get("loc", ()))
            if loc and loc[0] in _LOCATIONS:  # body, query, path: the field name says enough
                loc = loc[1:]
            where = ".".join(str(p) for p in loc)
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return _body("invalid_request", "; ".join(parts), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})  # any header an HTTPException sets is passed on
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request)
        return _body(code, str(exc.detail), exc.status_code, headers=headers or None)

    async def unreachable(_: Request, exc: Exception) -> JSONResponse:
        component = unavailable_component(exc) or "a backing service"
        log.warning("%s unreachable: %s: %s", component, type(exc).__name__, exc)
        return _body(
            "service_unavailable",
            f"{component} is unreachable; try again shortly",
            503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_S)},
        )

    for kind in _unavailable_types():
        app.add_exception_handler(kind, unreachable)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        if unavailable_component(exc):  # raised where the handlers above do not reach
            return await unreachable(_, exc)
        error_id = uuid.uuid4().hex[:12]
        log.error("unhandled error, error id %s", error_id, exc_info=exc)
        return _body(
            "internal_error",
            f"unexpected error; the server log has the details under error id {error_id}",
            500,
            error_id=error_id,
        )
