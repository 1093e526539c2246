"""One turn of a chat: the follow-up gate, the answer, and both messages stored in the session.

A turn reads the session's messages, rewrites the new message into a standalone query when
it is a follow-up (`followup`), answers it (`Answerer.answer_followup`), and appends the user
message (with its rewrite) and the assistant message (with its own citations and cache_info)
in one step. A turn that fails or is cancelled stores nothing.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from shared.generation import Turn
from shared.search.answerer import Answerer, Emit
from shared.search.followup import previous_question, rewrite_followup
from shared.state.sessions import ChatSession, ChatSessions

# What an LLM sees of the conversation: the last exchange is enough to resolve "it"; more
# only lengthens the prompt of a small model.
HISTORY_MESSAGES = 2
ANSWER_FIELDS = (
    "citations",
    "cache_info",
    "generator",
    "model",
    "abstained",
    "fallback",
    "fallback_reason",
    "invalid_citations",
    "unsupported_sentences",
)
# Citation numbers of an earlier answer point at that turn's sources, not this one's.
_MARKERS = re.compile(r"\s*\[(?:\d+|unsupported)\]")


def llm_history(messages: Sequence[Mapping[str, Any]]) -> list[Turn]:
    """The last exchange as chat turns, its citation markers removed."""
    turns = []
    for message in messages[-HISTORY_MESSAGES:]:
        role = message.get("role")
        if role in ("user", "assistant"):
            turns.append(Turn(role=role, content=_MARKERS.sub("", str(message.get("content", "")))))
    return turns


class Conversation:
    def __init__(self, answerer: Answerer, sessions: ChatSessions) -> None:
        self._answerer = answerer
        self._sessions = sessions

    def turn(
        self,
        session: ChatSession,
        *,
        message: str,
        corpus: str,
        top_k: int = 5,
        use_cache: bool = True,
        emit: Emit | None = None,
        cancel: threading.Event | None = None,
    ) -> dict[str, Any]:
        """The answer to `message` (the /ask object plus session_id and rewritten_query)."""
        earlier = self._sessions.messages(session.session_id)
        rewrite = rewrite_followup(message, previous_question=previous_question(earlier))
        asked_at = time.time()
        answer = self._answerer.answer_followup(
            corpus=corpus,
            message=message,
            rewrite=rewrite,
            history=llm_history(earlier),
            top_k=top_k,
            use_cache=use_cache,
            emit=emit,
            cancel=cancel,
        )
        user = {
            "role": "user",
            "content": message,
            "at": asked_at,
            "corpus": corpus,
            "rewritten_query": rewrite,
        }
        assistant = {
            "role": "assistant",
            "content": answer["answer"],
            "at": time.time(),
            "corpus": corpus,
            **{field: answer[field] for field in ANSWER_FIELDS},
        }
        self._sessions.append(session, [user, assistant])
        return {**answer, "session_id": session.session_id, "rewritten_query": rewrite}
