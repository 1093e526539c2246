"""Small client helpers the integration tests share: ingest and wait, search, corpus rows."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from services.stack.live import wait_job


def unique_corpus(prefix: str = "c") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def ingest(api: httpx.Client, path: Path | str, corpus: str, **extra: object) -> dict:
    resp = api.post("/ingest/start", json={"path": str(path), "corpus": corpus, **extra})
    assert resp.status_code == 202, resp.text
    return wait_job(api, resp.json()["job_id"], timeout_s=900)


def search(api: httpx.Client, corpus: str, query: str, mode: str = "bm25", k: int = 10) -> list[dict]:
    body = {"query": query, "corpus": corpus, "mode": mode, "top_k": k, "use_cache": False}
    resp = api.post("/search", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["results"]


def corpus_summary(api: httpx.Client, corpus: str) -> dict:
    rows = {c["name"]: c for c in api.get("/corpora").json()["corpora"]}
    return rows.get(corpus, {"documents": 0, "chunks": 0, "version": 0})
