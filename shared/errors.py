"""The errors a request can meet, each mapped by the API to one JSON shape.

    RagError
    ├── InvalidRequestError      400  a field of the request is wrong (names the field)
    ├── NotFoundError            404  job, corpus or tier unknown
    ├── ConflictError            409  the request does not fit the object's state
    ├── PayloadTooLargeError     413  a body or upload over its size limit
    └── ServiceUnavailableError  503  Redis or the store is down, or the API is at capacity
                                      (retryable; Retry-After)

Parse errors of single files live in `shared.parsing.errors`: they fail one file, not a request.
Refusals of access (401, 403, 429) live in `shared.auth.errors`.
"""

from __future__ import annotations

from typing import ClassVar


class RagError(Exception):
    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """HTTP headers the API sends with this error (e.g. Retry-After)."""
        return {}


class InvalidRequestError(RagError):
    code = "invalid_request"
    status = 400


class NotFoundError(RagError):
    code = "not_found"
    status = 404


class ConflictError(RagError):
    code = "conflict"
    status = 409


class PayloadTooLargeError(RagError):
    code = "payload_too_large"
    status = 413


class ServiceUnavailableError(RagError):
    """`retry_after_s` becomes the response's Retry-After header."""

    code = "service_unavailable"
    status = 503
    retryable = True

    def __init__(self, detail: str, *, retry_after_s: float = 5) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(max(1, round(self.retry_after_s)))}
