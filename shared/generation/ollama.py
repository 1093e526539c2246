"""The `ollama` generator: Ollama's native POST {url}/api/chat, one JSON object per line.

A failure after the response started arrives as a line `{"error": "..."}` inside the 200; the
answer is complete only at a line with `"done": true`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from shared.generation.base import Source, Timeouts, Turn
from shared.generation.errors import LLMBadResponse, LLMStreamError
from shared.generation.grounding import MAX_SOURCE_CHARS, build_messages
from shared.generation.transport import post_lines


def chat_stream_deltas(lines: Iterable[str]) -> Iterator[str]:
    """Answer text of /api/chat NDJSON lines, up to the `done` line."""
    for line in lines:
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
        except ValueError as exc:
            raise LLMBadResponse(f"not a JSON line in the answer: {line[:200]!r}") from exc
        if not isinstance(record, dict):
            raise LLMBadResponse(f"unexpected line in the answer: {line[:200]!r}")
        if "error" in record:
            raise LLMStreamError(f"ollama reported an error mid-answer: {record['error']}")
        content = (record.get("message") or {}).get("content")
        if content:
            yield str(content)
        if record.get("done"):
            return
    raise LLMStreamError("the answer stream ended before its done line")


class OllamaGenerator:
    name = "ollama"

    def __init__(
        self,
        *,
        url: str,
        model: str,
        timeouts: Timeouts,
        max_tokens: int = 512,
        temperature: float = 0.0,
        max_source_chars: int = MAX_SOURCE_CHARS,
    ) -> None:
        self._url = url.rstrip("/") + "/api/chat"
        self._model = model
        self._timeouts = timeouts
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._max_source_chars = max_source_chars

    @property
    def model(self) -> str:
        return self._model

    def stream(
        self,
        *,
        question: str,
        sources: Sequence[Source],
        history: Sequence[Turn] = (),
        cancel: threading.Event | None = None,
    ) -> Iterator[str]:
        body = {
            "model": self._model,
            "messages": build_messages(
                question=question,
                sources=sources,
                history=history,
                max_source_chars=self._max_source_chars,
            ),
            "stream": True,
            "options": {"temperature": self._temperature, "num_predict": self._max_tokens},
        }
        lines = post_lines(url=self._url, body=body, timeouts=self._timeouts, cancel=cancel)
        try:
            yield from chat_stream_deltas(lines)
        finally:
            lines.close()
