"""Search page: ranked passages (hybrid, dense or BM25) with paper, page and score."""

from __future__ import annotations

from typing import Any

import streamlit as st

from services.ui.client import ApiClient, ApiError
from services.ui.present import badges_markdown, cache_badges, escape_markdown

MODES = ["hybrid", "dense", "bm25"]
RESULT = "search_result"


def render(api: ApiClient) -> None:
    st.title("Search")
    corpus = st.session_state.get("corpus") or "default"
    with st.form("search_form"):
        query = st.text_input(
            "Query", key="search_query", placeholder="e.g. table structure recognition"
        )
        mode_col, k_col, cache_col = st.columns(3)
        mode = mode_col.radio("Mode", MODES, horizontal=True, key="search_mode")
        top_k = k_col.slider("Results", min_value=1, max_value=50, value=10, key="search_top_k")
        use_cache = cache_col.toggle("Use cache", value=True, key="search_use_cache")
        submitted = st.form_submit_button("Search", type="primary")
    if submitted:
        if not query.strip():
            st.warning("Type a query.")
        else:
            try:
                result = api.search(
                    query=query, corpus=corpus, mode=mode, top_k=top_k, use_cache=use_cache
                )
            except ApiError as exc:
                st.error(str(exc))
                return
            st.session_state[RESULT] = {
                "query": query,
                "corpus": corpus,
                "mode": mode,
                "use_cache": use_cache,
                **result,
            }
    shown = st.session_state.get(RESULT)
    if shown:
        _results(shown)


def _results(shown: dict[str, Any]) -> None:
    results = shown.get("results", [])
    st.markdown(
        f"**{len(results)}** results for *{shown['query']}* in **{shown['corpus']}** "
        f"({shown['mode']}) "
        + badges_markdown(cache_badges(shown.get("cache_info"), use_cache=shown["use_cache"]))
    )
    if not results:
        st.info("No passage matches. Is the corpus ingested?")
    for rank, hit in enumerate(results, start=1):
        with st.container(border=True, key=f"search_hit_{rank}"):
            title = hit.get("title") or hit.get("source") or "untitled"
            page = f" · page {hit['page']}" if hit.get("page") else ""
            score = float(hit.get("score") or 0)
            st.markdown(f"**{rank}. {escape_markdown(title)}**{page} · score {score:.4f}")
            st.caption(escape_markdown(hit.get("source") or ""))
            text = hit.get("text") or ""
            st.markdown(escape_markdown(text[:600] + ("…" if len(text) > 600 else "")))
