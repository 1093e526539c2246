"""The whole path through real services: API -> Celery over Redis -> store; search and ask."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

# Written from the papers' titles and abstracts before any result was seen; never tuned.
PARAPHRASED_QUESTIONS = {
    "2020.acl-main.447.pdf": "an openly released collection of millions of scholarly articles "
    "with full text and resolved citation links for text mining",
    "2023.eacl-main.121.pdf": "how should human judges check whether long summaries stay "
    "faithful to the source document",
    "papermage.pdf": "a Python toolkit for parsing and representing visually rich scientific "
    "PDF documents",
    "2203.00130v1.pdf": "helping lay readers understand medical research papers",
    "2206.10883v3.pdf": "summarising civil rights lawsuit case documents at several lengths",
    "2302.07302v1.pdf": "marking up citations while reading based on the reader's own "
    "publications and reading history",
    "pasa.pdf": "an agent built on a large language model that searches for academic papers",
    "test6.pdf": "a software pipeline for large-scale analysis of selective pressure in "
    "gene evolution",
    "naacl06-shinyama.pdf": "discovering relations between entities in news articles without "
    "predefined relation types",
    "paper.pdf": "explaining the predictions of machine learning models of molecular properties",
    "2304.02623v1.pdf": "designing AI support for real-world expository writing such as "
    "literature reviews",
}


def test_papers_job_succeeds_with_every_file_indexed(papers_job: dict) -> None:
    assert papers_job["state"] == "succeeded", papers_job
    assert papers_job["files_total"] == 17
    assert papers_job["files_done"] == 17
    assert papers_job["files_failed"] == 0, papers_job["errors"]
    assert papers_job["errors"] == []
    assert {f["outcome"] for f in papers_job["files"]} == {"indexed"}
    assert papers_job["chunks_indexed"] == sum(f["chunks"] for f in papers_job["files"])
    assert papers_job["chunks_indexed"] > 500
    assert papers_job["progress"] == 1.0
    assert papers_job["started_at"] <= papers_job["finished_at"]


def test_two_worker_processes_each_embedded_batches_of_the_job(papers_job: dict) -> None:
    workers = papers_job["workers"]
    assert len(workers) >= 2, workers
    assert all(n > 0 for n in workers.values())
    assert sum(workers.values()) >= papers_job["chunks_indexed"] // 32


@pytest.mark.parametrize("paper,question", sorted(PARAPHRASED_QUESTIONS.items()))
def test_paraphrased_question_finds_its_paper_first(
    api: httpx.Client, papers_job: dict, paper: str, question: str
) -> None:
    resp = api.post("/search", json={"query": question, "corpus": "papers", "top_k": 5})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert results, "no results"
    top = results[0]
    assert Path(top["source"]).name == paper, [Path(r["source"]).name for r in results]
    assert top["page"] >= 1 and top["title"] and top["text"]


def test_corpora_lists_documents_and_chunks(api: httpx.Client, papers_job: dict) -> None:
    corpora = {c["name"]: c for c in api.get("/corpora").json()["corpora"]}
    assert corpora["papers"]["documents"] == 17
    assert corpora["papers"]["chunks"] == papers_job["chunks_indexed"]
    assert corpora["papers"]["version"] >= 1


def test_each_search_mode_returns_ranked_results(api: httpx.Client, papers_job: dict) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        body = {"query": "table structure recognition", "corpus": "papers", "mode": mode,
                "top_k": 7, "use_cache": False}
        results = api.post("/search", json=body).json()["results"]
        assert len(results) == 7, mode
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True), mode
        assert len({r["chunk_id"] for r in results}) == 7


def test_ask_answers_with_citations_to_paper_and_page(api: httpx.Client, papers_job: dict) -> None:
    resp = api.post("/ask", json={"question": "What is PaSa and how does it search for papers?",
                                  "corpus": "papers", "use_cache": False})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["citations"], body
    assert "[1]" in body["answer"]
    cited = [Path(c["source"]).name for c in body["citations"]]
    assert "pasa.pdf" in cited
    for c in body["citations"]:
        assert c["page"] >= 1 and c["title"] and c["chunk_id"] and c["text"]


def test_sse_replays_the_whole_job_in_order_ending_in_succeeded(
    service, papers_job: dict
) -> None:
    events = []
    with httpx.stream("GET", f"{service.url}/ingest/events/{papers_job['job_id']}", timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in r.iter_lines():
            if not line:
                if frame:
                    events.append(frame)
                frame = {}
                continue
            key, _, value = line.partition(": ")
            frame[key] = value
    assert events[-1]["event"] == "succeeded"
    assert all(e["event"] == "progress" for e in events[:-1])
    ids = [tuple(int(x) for x in e["id"].split("-")) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    progress = [json.loads(e["data"])["progress"] for e in events]
    assert progress == sorted(progress), "progress went backwards"
    assert progress[-1] == 1.0
    assert json.loads(events[0]["data"])["state"] == "queued"


def test_path_outside_corpus_root_is_refused_naming_the_setting(api: httpx.Client) -> None:
    resp = api.post("/ingest/start", json={"path": "/etc", "corpus": "x"})
    assert resp.status_code == 400
    body = resp.json()
    assert body["error"] == "invalid_request"
    assert "RAG_CORPUS_ROOT" in body["detail"]


def test_unknown_job_is_404_in_the_error_shape(api: httpx.Client) -> None:
    resp = api.get("/ingest/status/nope")
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"


def test_bad_corpus_name_is_refused(api: httpx.Client) -> None:
    resp = api.post("/search", json={"query": "x", "corpus": "../etc"})
    assert resp.status_code == 400
    assert "corpus" in resp.json()["detail"]


def test_health_reports_redis_store_and_workers(api: httpx.Client) -> None:
    body = api.get("/health").json()
    assert body["redis"]["ok"] and body["store"]["ok"]
    assert body["workers"]["queues_without_consumer"] == []
    assert set(body["queues"]) == {"ingest", "embed", "index", "unacked"}
