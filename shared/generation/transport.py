"""The HTTP side of the LLM generators: one streamed POST, its body as lines, and every
transport failure mapped onto `shared.generation.errors`."""

from __future__ import annotations

import json
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import Any

import httpx

from shared.generation.base import Timeouts
from shared.generation.errors import (
    FirstTokenTimeout,
    GenerationError,
    LLMBadResponse,
    LLMRateLimited,
    LLMServerError,
    LLMStreamError,
    LLMUnavailable,
)


def split_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Lines of a byte stream whose reads may cut a line (or a UTF-8 character) anywhere."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield line.removesuffix(b"\r").decode("utf-8", errors="replace")
    if buffer:
        yield buffer.removesuffix(b"\r").decode("utf-8", errors="replace")


def post_lines(
    *,
    url: str,
    body: dict[str, Any],
    timeouts: Timeouts,
    headers: dict[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> Generator[str, None, None]:
    """POST `body` as JSON and yield the response body line by line as it arrives.

    One network read waits at most `total_s`: a backstop, as `policy` enforces the first-token
    and total limits itself. Stops quietly once `cancel` is set, at the next chunk.
    """
    timeout = httpx.Timeout(
        connect=timeouts.connect_s,
        read=timeouts.total_s,
        write=timeouts.connect_s,
        pool=timeouts.connect_s,
    )
    received = False
    try:
        with (
            httpx.Client(timeout=timeout) as client,
            client.stream("POST", url, json=body, headers=headers) as response,
        ):
            if response.status_code >= 400:
                response.read()
                raise status_error(response)
            for line in split_lines(response.iter_bytes()):
                received = True
                if cancel is not None and cancel.is_set():
                    return
                yield line
    except GenerationError:
        raise
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise LLMUnavailable(f"cannot connect to {url}: {exc or type(exc).__name__}") from exc
    except httpx.ReadTimeout as exc:
        if not received:
            raise FirstTokenTimeout(f"{url} sent nothing within {timeouts.total_s:g} s") from exc
        raise LLMStreamError(
            f"{url} stalled: no data for {timeouts.total_s:g} s mid-answer"
        ) from exc
    except httpx.HTTPError as exc:
        raise LLMStreamError(
            f"connection to {url} broke mid-answer: {exc or type(exc).__name__}"
        ) from exc


def status_error(response: httpx.Response) -> GenerationError:
    status = response.status_code
    detail = f"{response.request.url} answered HTTP {status}: {error_message(response.content)}"
    if status == 429:
        return LLMRateLimited(detail, retry_after_s=_retry_after(response))
    if status >= 500:
        return LLMServerError(detail, status=status)
    return LLMBadResponse(detail)


def error_message(content: bytes) -> str:
    """The message of an error body: Ollama's {"error": "..."}, OpenAI's {"error": {...}}."""
    text = content.decode("utf-8", errors="replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None
