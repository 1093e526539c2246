"""The door every request passes: is auth on, who is asking, may they, and not too often.

`Guard.authenticate` is pure CPU (the keys are held in memory), `Guard.rate_limit` one Redis
round trip, so both FastAPI dependencies and a raw ASGI fast path can afford them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from shared.auth import tokens
from shared.auth.errors import AuthSetupError, RateLimitedError, UnauthorizedError
from shared.auth.principal import ANONYMOUS, Principal, Role
from shared.auth.ratelimit import RateLimiter
from shared.auth.store import KeyRing
from shared.settings import AuthSettings

BOOTSTRAP_ID = "admin"  # never a generated id (those are hex)
_HOW_TO_SET_ADMIN_KEY = (
    "set RAG_ADMIN_KEY to a long random secret, e.g. "
    "export RAG_ADMIN_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') "
    "- or listen on 127.0.0.1, or set RAG_AUTH=off to run without keys"
)


@dataclass(frozen=True, slots=True)
class AuthDecision:
    enabled: bool
    reason: str

    def describe(self) -> str:
        return f"auth {'on' if self.enabled else 'off'}: {self.reason}"


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def decide_auth(security: AuthSettings, host: str) -> AuthDecision:
    """On or off, and why, for an API bound to `host`."""
    if security.auth == "on":
        return AuthDecision(True, "RAG_AUTH=on")
    if security.auth == "off":
        exposed = (
            ""
            if is_loopback(host)
            else f" (the API listens on {host}: anyone who reaches it may use it)"
        )
        return AuthDecision(False, f"RAG_AUTH=off{exposed}")
    if is_loopback(host):
        return AuthDecision(False, f"RAG_AUTH=auto and the API listens on loopback ({host})")
    return AuthDecision(True, f"RAG_AUTH=auto and the API listens on {host}, not loopback")


def check_auth_setup(security: AuthSettings, host: str) -> AuthDecision:
    """The decision, or AuthSetupError when auth is on and there is no admin key."""
    decision = decide_auth(security, host)
    if decision.enabled and security.admin_key is None:
        raise AuthSetupError(
            f"auth is on ({decision.reason}) but RAG_ADMIN_KEY is not set: {_HOW_TO_SET_ADMIN_KEY}"
        )
    return decision


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key of `Authorization: Bearer KEY`, else of `X-API-Key: KEY`."""
    auth = _header(headers, "authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = _header(headers, "x-api-key")
    return key.strip() if key and key.strip() else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)  # Starlette's Headers ignore case; a plain dict may not
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


class Guard:
    def __init__(
        self,
        *,
        enabled: bool,
        ring: KeyRing,
        admin_key: str | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        if enabled and not admin_key:
            raise AuthSetupError(
                f"auth is on but RAG_ADMIN_KEY is not set: {_HOW_TO_SET_ADMIN_KEY}"
            )
        self.enabled = enabled
        self.ring = ring
        self.limiter = limiter
        self._admin_digest = tokens.digest(admin_key) if admin_key else None
        self._admin = Principal(
            key_id=BOOTSTRAP_ID, name="bootstrap admin (RAG_ADMIN_KEY)", role=Role.ADMIN
        )

    def identify(self, headers: Mapping[str, str]) -> Principal:
        """Who sent these headers; UnauthorizedError when nobody we know."""
        if not self.enabled:
            return ANONYMOUS
        token = presented_key(headers)
        if token is None:
            raise UnauthorizedError(
                "missing API key: send Authorization: Bearer KEY (or X-API-Key: KEY)"
            )
        if self._admin_digest is not None and tokens.matches(token, self._admin_digest):
            return self._admin
        record = self.ring.find(token)
        if record is None:
            raise UnauthorizedError("unknown or revoked API key")
        return record.principal()

    def authenticate(
        self, headers: Mapping[str, str], *, required_role: Role, corpus: str | None = None
    ) -> Principal:
        """The principal, if it holds `required_role` (and may use `corpus`, when given).
        Raises UnauthorizedError (401) or ForbiddenError (403)."""
        principal = self.identify(headers)
        principal.require_role(required_role)
        if corpus is not None:
            principal.require_corpus(corpus)
        return principal

    async def rate_limit(self, principal: Principal) -> None:
        """Take one token of the principal's bucket; RateLimitedError (429) when empty."""
        if self.limiter is None:
            return
        wait = await self.limiter.take(principal.key_id)
        if wait > 0:
            raise RateLimitedError(
                f"key {principal.key_id!r} is over RAG_RATE_LIMIT_PER_S="
                f"{self.limiter.per_s:g} (burst {self.limiter.burst}); retry in {wait:.1f}s",
                retry_after_s=wait,
            )

    def shows_detail(self, headers: Mapping[str, str]) -> bool:
        """Whether /health may show its internals: auth off, or an admin key presented."""
        if not self.enabled:
            return True
        try:
            return self.identify(headers).role is Role.ADMIN
        except UnauthorizedError:
            return False
