"""API keys on the FastAPI side: a `Principal` dependency per role, CORS and trusted hosts.

Each route declares the role it needs (`ReaderDep`, `WriterDep`, `AdminDep`); the dependency
authenticates the request's headers and takes a token of the key's rate limit before the
route runs. Nothing here wraps the response, so SSE streams pass untouched. Code outside
FastAPI (a raw ASGI fast path) calls the same two steps on the app's `Guard`:

    guard = app.state.ctx.guard
    principal = guard.authenticate(Headers(scope=scope), required_role=Role.READER, corpus=c)
    await guard.rate_limit(principal)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import Depends, FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from services.api.deps import GuardDep
from services.api.schemas import ErrorBody
from shared.auth import ApiKeyStore, Guard, KeyRing, Principal, RateLimiter, Role
from shared.resources import Resources
from shared.settings import AuthSettings

# Documented on every route that needs a key.
DENIED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No API key, or one unknown or revoked."},
    403: {"model": ErrorBody, "description": "The key's role or corpora do not allow this."},
    429: {"model": ErrorBody, "description": "Over the key's rate limit; see Retry-After."},
}


# Declared so /openapi.json and /docs show both ways to send a key; the guard reads them.
_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer KEY")
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="X-API-Key: KEY")


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the request's principal, holding at least `role`, within its rate limit."""

    async def principal(
        request: Request,
        guard: GuardDep,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
        _key: Annotated[str | None, Security(_API_KEY)] = None,
    ) -> Principal:
        prior = request.scope.get("state", {}).get("rag.principal")
        if prior is not None:  # the fast path authenticated and rate-limited this request
            prior.require_role(role)
            return prior  # type: ignore[no-any-return]
        found = guard.authenticate(request.headers, required_role=role)
        await guard.rate_limit(found)
        return found

    principal.__name__ = f"require_{role}"
    return principal


ReaderDep = Annotated[Principal, Depends(require(Role.READER))]
WriterDep = Annotated[Principal, Depends(require(Role.WRITER))]
AdminDep = Annotated[Principal, Depends(require(Role.ADMIN))]


def build_guard(
    res: Resources, aredis: aioredis.Redis, *, enabled: bool
) -> tuple[Guard, ApiKeyStore]:
    """The process's guard (its key ring loaded now) and the key store behind it."""
    security = res.settings.security
    store = ApiKeyStore(res.redis, res.keys)
    ring = KeyRing()
    ring.reload(store)
    limiter = None
    if security.rate_limit_per_s > 0:
        limiter = RateLimiter(
            aredis, res.keys, per_s=security.rate_limit_per_s, burst=security.burst
        )
    admin_key = security.admin_key.get_secret_value() if security.admin_key else None
    return Guard(enabled=enabled, ring=ring, admin_key=admin_key, limiter=limiter), store


def install_http_policy(app: FastAPI, security: AuthSettings) -> None:
    """Trusted Host headers and CORS, when configured (both only read the request scope or
    add headers to the response start: streams pass through)."""
    if security.trusted_hosts and "*" not in security.trusted_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=security.trusted_hosts)
    if security.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=security.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Last-Event-ID"],
            allow_credentials=False,
        )
