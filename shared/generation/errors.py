"""Why an LLM answer failed. Each failure falls back to the extractive answer, its `reason`
becoming the answer's `fallback_reason`; `retryable` says whether one quick retry may help.

    GenerationError
    ├── LLMUnavailable          connection_refused   nothing answers at the URL (retryable)
    ├── LLMTimeout
    │   ├── FirstTokenTimeout   first_token_timeout  no answer text within the first-token limit
    │   └── TotalTimeout        total_timeout        the answer did not finish within the limit
    ├── LLMHTTPError                                 the server answered with an error status
    │   ├── LLMServerError      http_5xx             (retryable)
    │   └── LLMRateLimited      http_429             (retryable; `retry_after_s` if sent)
    ├── LLMStreamError          stream_error         an error line, a dropped connection, or a
    │                                                stream that ended without its end marker
    └── LLMBadResponse          bad_response         unparseable data, or another 4xx status
"""

from __future__ import annotations

from typing import ClassVar


class GenerationError(Exception):
    reason: ClassVar[str] = "generation_error"
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class LLMUnavailable(GenerationError):
    reason = "connection_refused"
    retryable = True


class LLMTimeout(GenerationError):
    pass


class FirstTokenTimeout(LLMTimeout):
    reason = "first_token_timeout"


class TotalTimeout(LLMTimeout):
    reason = "total_timeout"


class LLMHTTPError(GenerationError):
    def __init__(self, detail: str, *, status: int) -> None:
        super().__init__(detail)
        self.status = status


class LLMServerError(LLMHTTPError):
    reason = "http_5xx"
    retryable = True


class LLMRateLimited(LLMHTTPError):
    reason = "http_429"
    retryable = True

    def __init__(self, detail: str, *, status: int = 429, retry_after_s: float | None = None):
        super().__init__(detail, status=status)
        self.retry_after_s = retry_after_s


class LLMStreamError(GenerationError):
    reason = "stream_error"


class LLMBadResponse(GenerationError):
    reason = "bad_response"


REASONS: tuple[str, ...] = (
    LLMUnavailable.reason,
    FirstTokenTimeout.reason,
    TotalTimeout.reason,
    LLMServerError.reason,
    LLMRateLimited.reason,
    LLMStreamError.reason,
    LLMBadResponse.reason,
)
