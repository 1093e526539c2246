"""Chat sessions in Redis: a hash of what the session is, and one list of its messages.

Both keys expire together RAG_CHAT_TTL_S after the last turn; the list keeps the last
RAG_CHAT_MAX_MESSAGES messages. A session belongs to the API key that created it: to any
other key it does not exist (404, never 403, so ids cannot be probed).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import redis

from shared.errors import NotFoundError
from shared.keys import Keys

_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")

# Append only while the session exists (it may expire between reading and writing), trim to
# the cap, and extend both keys' lives.
_APPEND = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cap = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
for i = 3, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -cap, -1)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return 1
"""


@dataclass(frozen=True, slots=True)
class ChatSession:
    session_id: str
    corpus: str
    owner: str  # the key id of the principal that created it
    generator: str
    model: str | None
    created: float

    def header(self) -> dict[str, Any]:
        """What the session is, without its owner."""
        data = asdict(self)
        data.pop("owner")
        return data


class ChatSessions:
    def __init__(
        self, client: redis.Redis, keys: Keys, *, ttl_s: int, max_messages: int
    ) -> None:
        self._r = client
        self._k = keys
        self._ttl = ttl_s
        self._cap = max_messages
        self._append = client.register_script(_APPEND)

    def create(
        self, *, corpus: str, owner: str, generator: str, model: str | None
    ) -> ChatSession:
        session = ChatSession(
            session_id=uuid.uuid4().hex,
            corpus=corpus,
            owner=owner,
            generator=generator,
            model=model,
            created=time.time(),
        )
        key = self._k.chat_session(session.session_id)
        fields = {k: json.dumps(v) for k, v in asdict(session).items()}
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]  # redis-py's Mapping is invariant
            pipe.expire(key, self._ttl)
            pipe.execute()
        return session

    def get(self, session_id: str, *, owner: str) -> ChatSession:
        """The session, if it exists and `owner` created it; else NotFoundError."""
        if not _SESSION_ID.match(session_id):
            raise _missing(session_id)
        raw: dict[bytes, bytes] = self._r.hgetall(self._k.chat_session(session_id))  # type: ignore[assignment]
        if not raw:
            raise _missing(session_id)
        fields = {k.decode(): json.loads(v) for k, v in raw.items()}
        session = ChatSession(**fields)
        if session.owner != owner:
            raise _missing(session_id)
        return session

    def messages(self, session_id: str) -> list[dict[str, Any]]:
        """Every kept message, oldest first."""
        return [json.loads(m) for m in self._r.lrange(self._k.chat_messages(session_id), 0, -1)]

    def append(self, session: ChatSession, messages: Sequence[Mapping[str, Any]]) -> None:
        """Add `messages` in order, atomically (a turn's question and answer stay together)."""
        added = self._append(
            keys=[self._k.chat_session(session.session_id), self._k.chat_messages(session.session_id)],
            args=[self._cap, self._ttl, *(json.dumps(m, separators=(",", ":")) for m in messages)],
        )
        if not added:
            raise NotFoundError(f"chat session {session.session_id} expired during the turn")

    def delete(self, session_id: str, *, owner: str) -> None:
        session = self.get(session_id, owner=owner)
        self._r.delete(
            self._k.chat_session(session.session_id), self._k.chat_messages(session.session_id)
        )


def _missing(session_id: str) -> NotFoundError:
    return NotFoundError(f"no chat session {session_id!r} (it may have expired)")
