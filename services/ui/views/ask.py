"""Ask page: a conversation over the chat API. Answers stream in; each turn shows the cache
tiers that served it, the generator, any flags, and its citations, whose pages open as images
with the passage highlighted. "Save conversation" downloads the session's JSONL export."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import streamlit as st

from services.ui.client import ApiClient, ApiError
from services.ui.present import (
    Badge,
    answer_flags,
    badges_markdown,
    cache_badges,
    citation_heading,
    escape_markdown,
    generator_line,
    history_rows,
)
from services.ui.sse import ServerEvent

CHAT = "chat"


def _chat() -> dict[str, Any]:
    if CHAT not in st.session_state:
        st.session_state[CHAT] = {"session_id": None, "turns": []}
    return st.session_state[CHAT]  # type: ignore[no-any-return]


def render(api: ApiClient) -> None:
    st.title("Ask")
    chat = _chat()
    corpus = st.session_state.get("corpus") or "default"
    cache_col, k_col, new_col, save_col = st.columns([2, 2, 2, 2], vertical_alignment="center")
    with cache_col:
        use_cache = st.toggle("Use cache", value=True, key="use_cache")
        st.markdown(
            badges_markdown(
                [Badge("cache on", "green") if use_cache else Badge("cache off", "gray")]
            )
        )
    top_k = k_col.number_input("Passages", min_value=1, max_value=20, value=5, key="ask_top_k")
    if new_col.button("New conversation", key="chat_new"):
        st.session_state[CHAT] = {"session_id": None, "turns": []}
        st.rerun()
    session_id = chat["session_id"]
    save_col.download_button(
        "Save conversation",
        data=(lambda: api.export(session_id)) if session_id else b"",
        file_name=f"conversation-{session_id}.jsonl",
        mime="application/x-ndjson",
        disabled=not session_id,
        on_click="ignore",
        key="chat_save",
        help="The session's JSONL export: a header line, then one line per message.",
    )
    st.caption(
        f"Corpus **{escape_markdown(corpus)}**"
        + (f" · session `{session_id}`" if session_id else "")
    )
    for index, turn in enumerate(chat["turns"]):
        _render_turn(api, index, turn)
    if chat["turns"]:
        with st.expander("History"):
            st.table(history_rows(chat["turns"]), hide_index=True)
    prompt = st.chat_input("Ask a question about the papers", key="chat_input")
    if prompt:
        _ask(api, chat, prompt=prompt, corpus=corpus, top_k=int(top_k), use_cache=use_cache)


class _Turn:
    """Collects one streamed answer: yields text for st.write_stream, keeps the rest."""

    def __init__(self) -> None:
        self.final: dict[str, Any] | None = None
        self.sources: list[dict[str, Any]] = []
        self.error: str | None = None
        self.notice: str | None = None
        self._streamed = False

    def text(self, events: Iterator[ServerEvent]) -> Iterator[str]:
        try:
            for event in events:
                if event.event == "token":
                    self._streamed = True
                    yield str(event.json().get("text", ""))
                elif event.event == "retrieval":
                    self.sources = list(event.json().get("sources", []))
                elif event.event == "final":
                    self.final = event.json()
                    if not self._streamed:  # a cached answer comes whole, as one event
                        yield str(self.final.get("answer", ""))
                elif event.event == "error":
                    data = event.json()
                    self.error = f"{data.get('detail') or data.get('error') or 'the answer failed'}"
                    return
                elif event.event == "notice":
                    self.notice = str(event.json().get("detail", ""))
        except ApiError as exc:
            self.error = str(exc)
            return
        if self.final is None and self.error is None:
            self.error = "the answer stream ended before the final answer"


def _ask(
    api: ApiClient, chat: dict[str, Any], *, prompt: str, corpus: str, top_k: int, use_cache: bool
) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(prompt))
    collector = _Turn()
    started = time.monotonic()
    with st.chat_message("assistant"):
        events = api.stream_answer(
            message=prompt,
            corpus=corpus,
            session_id=chat["session_id"],
            top_k=top_k,
            use_cache=use_cache,
        )
        st.write_stream(collector.text(events))
    turn: dict[str, Any] = {
        "question": prompt,
        "corpus": corpus,
        "use_cache": use_cache,
        "elapsed_s": time.monotonic() - started,
        "notice": collector.notice,
        "error": collector.error,
    }
    if collector.final is not None:
        turn.update(collector.final)
        turn.setdefault("citations", collector.sources)
        chat["session_id"] = collector.final.get("session_id") or chat["session_id"]
    chat["turns"].append(turn)
    st.rerun()


def _render_turn(api: ApiClient, index: int, turn: dict[str, Any]) -> None:
    with st.chat_message("user"):
        st.markdown(escape_markdown(turn["question"]))
    with st.chat_message("assistant"), st.container(key=f"turn_{index}"):
        if turn.get("error"):
            st.error(turn["error"])
            return
        st.markdown(escape_markdown(str(turn.get("answer", ""))))
        badges = cache_badges(turn.get("cache_info"), use_cache=turn["use_cache"]) + answer_flags(
            turn
        )
        st.markdown(badges_markdown(badges))
        details = [generator_line(turn), f"{turn['elapsed_s']:.2f} s"]
        if turn.get("rewritten_query") and turn["rewritten_query"] != turn["question"]:
            details.append(f"searched for: {escape_markdown(turn['rewritten_query'])}")
        st.caption(" · ".join(d for d in details if d))
        if turn.get("notice"):
            st.caption(turn["notice"])
        citations = turn.get("citations") or []
        if citations:
            with st.expander(f"Citations ({len(citations)})", expanded=True):
                for citation in citations:
                    _render_citation(api, index, turn["corpus"], citation)


def _render_citation(api: ApiClient, index: int, corpus: str, citation: dict[str, Any]) -> None:
    with st.container(key=f"citation_{index}_{citation.get('n')}"):
        st.markdown(f"**{escape_markdown(citation_heading(citation))}**")
        st.caption(
            f"{escape_markdown(citation.get('source') or '')} · score {float(citation.get('score') or 0):.4f}"
        )
        passage = str(citation.get("text") or "")
        st.markdown(
            "> "
            + escape_markdown(passage[:700] + ("…" if len(passage) > 700 else "")).replace(
                "\n", " "
            )
        )
        openable = citation.get("doc_id") and citation.get("page")
        if openable and st.button(
            f"Open page {citation['page']}", key=f"open_{index}_{citation.get('n')}"
        ):
            _page_dialog(api, corpus, citation)


@st.dialog("Cited page", width="large")
def _page_dialog(api: ApiClient, corpus: str, citation: dict[str, Any]) -> None:
    st.markdown(f"**{escape_markdown(citation_heading(citation))}**")
    try:
        png = api.page_image(
            doc_id=citation["doc_id"],
            page=int(citation["page"]),
            corpus=corpus,
            chunk_id=citation.get("chunk_id"),
            text=citation.get("text"),
        )
    except ApiError as exc:
        st.error(exc.detail)
        return
    st.image(png, caption=f"Page {citation['page']}: the cited passage is highlighted")
