"""The sidebar: which corpus the pages work on, the API's health, and the cache tiers with purge."""

from __future__ import annotations

from typing import Any

import streamlit as st

from services.ui.client import ApiClient, ApiError
from services.ui.present import Badge, badges_markdown, cache_rows, megabytes, plural

TIERS = ("answers", "retrieval", "embeddings", "all")
NEXT_CORPUS = "corpus_next"  # set by a page, applied before the selector is drawn again


def corpus_selector(api: ApiClient) -> str:
    if NEXT_CORPUS in st.session_state:
        st.session_state["corpus"] = st.session_state.pop(NEXT_CORPUS)
    try:
        names = [c["name"] for c in api.corpora()]
    except ApiError as exc:
        st.error(str(exc))
        names = []
    current = st.session_state.get("corpus")
    if current and current not in names:
        names.append(current)
    if not names:
        names = ["default"]
    return str(
        st.selectbox("Corpus", names, key="corpus", help="Ask and Search work on this corpus.")
    )


def health_line(api: ApiClient) -> None:
    try:
        report = api.health()
    except ApiError as exc:
        st.error(str(exc))
        return
    workers = report.get("workers", {})
    # The API's own index consumer is listed too; count the processes that parse and embed.
    live = sum(1 for w in workers.get("live", []) if {"ingest", "embed"} & set(w.get("queues", [])))
    status = (
        Badge("API ok", "green")
        if report.get("status") == "ok"
        else Badge("API degraded", "orange")
    )
    st.markdown(badges_markdown([status, Badge(plural(live, "worker"), "gray")]))
    missing = workers.get("queues_without_consumer") or []
    if missing:
        st.caption("No worker consumes: " + ", ".join(missing) + " (jobs wait until one does)")


def cache_panel(api: ApiClient) -> None:
    st.subheader("Cache")
    flash = st.session_state.pop("cache_flash", None)
    if flash:
        st.success(flash)
    try:
        stats = api.cache_stats()
    except ApiError as exc:
        st.error(str(exc))
        return
    st.table(cache_rows(stats), hide_index=True)
    totals = stats.get("totals", {})
    st.caption(
        f"{totals.get('keys', 0)} keys · {megabytes(totals.get('bytes', 0))} MB · "
        f"hit rate {100 * float(totals.get('hit_rate', 0)):.0f}%"
    )
    tier = st.selectbox("Tier to purge", TIERS, key="purge_tier")
    if st.button("Purge…", key="purge_open"):
        _confirm_purge(api, tier, stats)


@st.dialog("Purge the cache")
def _confirm_purge(api: ApiClient, tier: str, stats: dict[str, Any]) -> None:
    figures = stats.get("totals", {}) if tier == "all" else stats.get("tiers", {}).get(tier, {})
    what = "every tier" if tier == "all" else f"the {tier} tier"
    st.write(
        f"Delete {plural(int(figures.get('keys', 0)), 'key')} "
        f"({megabytes(figures.get('bytes', 0))} MB) from {what}? "
        "What they held is computed again when next asked for."
    )
    confirm, cancel = st.columns(2)
    if confirm.button(f"Purge {tier}", type="primary", key="purge_confirm"):
        try:
            purged = api.purge(tier)
        except ApiError as exc:
            st.error(str(exc))
            return
        removed = sum(purged.values())
        st.session_state["cache_flash"] = f"Purged {plural(removed, 'key')} from {what}."
        st.rerun()
    if cancel.button("Cancel", key="purge_cancel"):
        st.rerun()
