"""Why a request was refused before it did anything, each mapped by the API to one JSON shape.

RagError (shared.errors)
└── AccessError
    ├── UnauthorizedError   401  no key, or a key nobody issued (or one revoked)
    ├── ForbiddenError      403  a real key whose role or corpora do not cover the request
    └── RateLimitedError    429  the key spent its tokens; Retry-After says when to come back

AuthSetupError               the API cannot start: auth is on and no admin key is set
"""

from __future__ import annotations

import math

from shared.errors import RagError


class AccessError(RagError):
    pass


class UnauthorizedError(AccessError):
    code = "unauthorized"
    status = 401

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class ForbiddenError(AccessError):
    code = "forbidden"
    status = 403


class RateLimitedError(AccessError):
    code = "rate_limited"
    status = 429
    retryable = True

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class AuthSetupError(Exception):
    """The settings leave the API open or unusable; the message says what to set."""
