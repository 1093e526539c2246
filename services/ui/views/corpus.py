"""Corpus page: ingest a server path or uploaded files, follow the job live, cancel or retry it,
and see the job list and the corpora."""

from __future__ import annotations

from typing import Any

import streamlit as st

from services.ui.client import ApiClient, ApiError
from services.ui.present import (
    badges_markdown,
    file_rows,
    is_active,
    job_badge,
    job_rows,
    job_summary,
)
from services.ui.views.sidebar import NEXT_CORPUS

FILE_TYPES = ["pdf", "md", "markdown", "txt", "text", "html", "htm", "jsonl"]
POLL_S = 1.0
WATCH = "watch_job"
REJECTED = "upload_rejected"  # {job_id: files the upload refused}


def render(api: ApiClient) -> None:
    st.title("Corpus")
    _ingest_forms(api)
    job_id = st.session_state.get(WATCH)
    if job_id:
        _job_section(api, job_id)
    _jobs_table(api)
    _corpora_table(api)


def _passwords(text: str) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


def _watch(job_id: str, corpus: str) -> None:
    st.session_state[WATCH] = job_id
    st.session_state[NEXT_CORPUS] = corpus  # Ask and Search follow the corpus being built


def _ingest_forms(api: ApiClient) -> None:
    corpus_now = st.session_state.get("corpus") or "default"
    upload_tab, path_tab = st.tabs(["Upload files", "Server path"])
    with upload_tab, st.form("upload_form", clear_on_submit=True):
        files = st.file_uploader("Papers", type=FILE_TYPES, accept_multiple_files=True)
        corpus = st.text_input("Corpus", value=corpus_now)
        passwords = st.text_area("PDF passwords, one per line (optional)", key="upload_passwords")
        if st.form_submit_button("Upload and ingest", type="primary"):
            if not files:
                st.warning("Choose at least one file.")
            else:
                try:
                    accepted = api.upload(
                        [(f.name, f.getvalue()) for f in files],
                        corpus=corpus.strip(),
                        passwords=_passwords(passwords),
                    )
                except ApiError as exc:
                    st.error(str(exc))
                else:
                    st.session_state[REJECTED] = {accepted["job_id"]: accepted.get("rejected", [])}
                    _watch(accepted["job_id"], corpus.strip())
                    st.rerun()
    with path_tab, st.form("path_form"):
        path = st.text_input(
            "Folder or file on the server (inside RAG_CORPUS_ROOT)", key="ingest_path"
        )
        corpus = st.text_input("Corpus", value=corpus_now)
        sync = st.checkbox("Remove documents whose files are gone (sync)", key="ingest_sync")
        passwords = st.text_area("PDF passwords, one per line (optional)", key="path_passwords")
        if st.form_submit_button("Start ingestion", type="primary"):
            try:
                accepted = api.start_ingest(
                    path=path.strip(),
                    corpus=corpus.strip(),
                    sync=sync,
                    passwords=_passwords(passwords),
                )
            except ApiError as exc:
                st.error(str(exc))
            else:
                _watch(accepted["job_id"], corpus.strip())
                st.rerun()


def _job_section(api: ApiClient, job_id: str) -> None:
    try:
        job = api.job(job_id)
    except ApiError as exc:
        st.error(f"Job {job_id}: {exc}")
        return
    for rejected in st.session_state.get(REJECTED, {}).get(job_id, []):
        st.warning(f"Not ingested: {rejected['error']}")
    active = is_active(job)
    # While the job runs the panel polls the status every second; when it ends, one full
    # rerun stops the polling, so the figures of an ended job stay as they were.
    panel = st.fragment(_job_panel, run_every=POLL_S if active else None)
    panel(api, job_id, job if not active else None, active)


def _job_panel(api: ApiClient, job_id: str, ended: dict[str, Any] | None, was_active: bool) -> None:
    if ended is not None:
        job = ended
    else:
        try:
            job = api.job(job_id)
        except ApiError as exc:
            st.error(f"Job {job_id}: {exc}")
            return
        if was_active and not is_active(job):
            st.rerun()
    with st.container(border=True, key="job_panel"):
        st.subheader(f"Job {job_id[:12]}")
        st.markdown(
            badges_markdown([job_badge(job)]) + f" corpus **{job['corpus']}** · `{job['path']}`"
        )
        st.progress(min(1.0, float(job.get("progress") or 0)), text=job_summary(job))
        if job.get("message"):
            st.caption(job["message"])
        if is_active(job) and job.get("current_file"):
            st.caption(f"Working on {job['current_file']}")
        for failure in job.get("errors") or []:
            st.error(f"{failure['file']}: {failure['error']}")
        rows = file_rows(job)
        if rows:
            st.table(rows, hide_index=True)
        _job_actions(api, job)


def _job_actions(api: ApiClient, job: dict[str, Any]) -> None:
    job_id = job["job_id"]
    if is_active(job):
        if st.button("Cancel job", key="job_cancel"):
            try:
                api.cancel(job_id)
            except ApiError as exc:
                st.error(str(exc))
            st.rerun()
        return
    retryable = job["state"] != "succeeded" or job.get("files_failed")
    if retryable and st.button("Retry what failed", key="job_retry"):
        try:
            accepted = api.retry(job_id)
        except ApiError as exc:
            st.error(str(exc))
            return
        _watch(accepted["job_id"], job["corpus"])
        st.rerun()


def _jobs_table(api: ApiClient) -> None:
    st.subheader("Jobs")
    try:
        jobs = api.jobs(limit=20)
    except ApiError as exc:
        st.error(str(exc))
        return
    if not jobs:
        st.caption("No ingestion job yet.")
        return
    st.table(job_rows(jobs), hide_index=True)
    labels = {
        j["job_id"]: f"{j['job_id'][:12]} · {j['corpus']} · {job_badge(j).label}" for j in jobs
    }
    st.selectbox(
        "Show a job",
        list(labels),
        index=None,
        format_func=labels.__getitem__,
        placeholder="Choose a job to see its files",
        key="job_choice",
        on_change=_show_chosen_job,
    )


def _show_chosen_job() -> None:
    choice = st.session_state.get("job_choice")
    if choice:
        st.session_state[WATCH] = choice
        st.session_state["job_choice"] = None


def _corpora_table(api: ApiClient) -> None:
    st.subheader("Corpora")
    try:
        corpora = api.corpora()
    except ApiError as exc:
        st.error(str(exc))
        return
    if not corpora:
        st.caption("No corpus yet: ingest files above.")
        return
    st.table(
        [
            {
                "corpus": c["name"],
                "documents": c["documents"],
                "chunks": c["chunks"],
                "version": c["version"],
            }
            for c in corpora
        ],
        hide_index=True,
    )
