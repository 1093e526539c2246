"""The `openai` generator: POST {base}/chat/completions with stream=true, read as server-sent
events (`data: {chunk}` ... `data: [DONE]`). Works with llama.cpp, vLLM and OpenAI itself."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from shared.generation.base import Source, Timeouts, Turn
from shared.generation.errors import LLMBadResponse, LLMStreamError
from shared.generation.grounding import MAX_SOURCE_CHARS, build_messages
from shared.generation.transport import post_lines


def sse_data(lines: Iterable[str]) -> Iterator[str]:
    """The data of each server-sent event; an `error:` field (llama.cpp) raises."""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "error":
            raise LLMStreamError(f"the server reported an error mid-answer: {value[:300]}")
        # comments (":"), event:, id: and retry: carry nothing for us
    if data:
        yield "\n".join(data)


def chat_deltas(events: Iterable[str]) -> Iterator[str]:
    """Answer text of chat.completion.chunk events, up to `[DONE]`.

    A stream that ends with neither `[DONE]` nor a finish_reason was cut off: that raises, so
    a server dying mid-answer never passes for a short answer.
    """
    finished = False
    for data in events:
        if data.strip() == "[DONE]":
            return
        try:
            chunk: Any = json.loads(data)
        except ValueError as exc:
            raise LLMBadResponse(f"not JSON in the event stream: {data[:200]!r}") from exc
        if not isinstance(chunk, dict):
            raise LLMBadResponse(f"unexpected event: {data[:200]!r}")
        if "error" in chunk:
            error = chunk["error"]
            message = error.get("message", error) if isinstance(error, dict) else error
            raise LLMStreamError(f"the server reported an error mid-answer: {message}")
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content:
                yield str(content)
            finished = finished or bool(choice.get("finish_reason"))
    if not finished:
        raise LLMStreamError("the event stream ended before the answer did (no [DONE])")


class OpenAIChatGenerator:
    """Any OpenAI-compatible chat server. `base_url` includes the version path, e.g. .../v1."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        timeouts: Timeouts,
        model: str | None = None,
        api_key: str | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        max_source_chars: int = MAX_SOURCE_CHARS,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._api_key = api_key
        self._timeouts = timeouts
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._max_source_chars = max_source_chars

    @property
    def model(self) -> str:
        return self._model or "server-default"

    def stream(
        self,
        *,
        question: str,
        sources: Sequence[Source],
        history: Sequence[Turn] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        body: dict[str, Any] = {
            "messages": build_messages(
                question=question,
                sources=sources,
                history=history,
                max_source_chars=self._max_source_chars,
            ),
            "stream": True,
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        if self._model:
            body["model"] = self._model
        headers = {"Accept": "text/event-stream"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        lines = post_lines(
            url=self._url, body=body, timeouts=self._timeouts, headers=headers, cancel=cancel
        )
        try:
            yield from chat_deltas(sse_data(lines))
        finally:
            lines.close()
