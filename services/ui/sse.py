"""Server-sent events read from lines of text (the API's /chat, /ask and /ingest/events)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServerEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data) if self.data else {}


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """Events as the EventSource spec reads them: `field: value` lines, a blank line ends one
    event, `:` lines are comments (heartbeats), several `data:` lines join with newlines."""
    event, data, event_id = "", [], None
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield ServerEvent(event or "message", "\n".join(data), event_id)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    if data:
        yield ServerEvent(event or "message", "\n".join(data), event_id)
