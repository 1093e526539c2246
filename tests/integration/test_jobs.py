"""Jobs you can trust: crash recovery, cancel, replayable events, stalls, retry, listing."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest
import redis

from shared.keys import Keys
from shared.state.jobs import JobStore
from tests.support.api import corpus_summary, ingest, unique_corpus
from tests.support.service import LiveService, wait_job

PROBE_QUERIES = [
    "faithfulness of long summaries",
    "citation context while reading",
    "molecular property prediction explanations",
    "legal case summarization",
]


def start(api: httpx.Client, path: Path, corpus: str, **extra: object) -> str:
    resp = api.post("/ingest/start", json={"path": str(path), "corpus": corpus, **extra})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["job_id"])


def wait_for(api: httpx.Client, job_id: str, predicate, *, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = api.get(f"/ingest/status/{job_id}").json()
        if predicate(record):
            return record
        assert record["state"] in ("queued", "running"), record
        time.sleep(0.2)
    raise TimeoutError(record)


def _wait_until_queues_drain(api: httpx.Client, *, timeout_s: float = 120) -> None:
    """Every queue empty and nothing delivered-but-unacknowledged, as /health reports it."""
    deadline = time.monotonic() + timeout_s
    queues: dict = {}
    while time.monotonic() < deadline:
        queues = api.get("/health").json().get("queues") or {}
        if queues and not any(queues.values()):
            return
        time.sleep(0.2)
    raise TimeoutError(f"queues still busy: {queues}")


def ranked_chunks(api: httpx.Client, corpus: str) -> list[list[str]]:
    out = []
    for q in PROBE_QUERIES:
        body = {"query": q, "corpus": corpus, "top_k": 10, "use_cache": False}
        out.append([r["chunk_id"] for r in api.post("/search", json=body).json()["results"]])
    return out


def pool_pid(api: httpx.Client, worker: str) -> int:
    live = api.get("/health").json()["workers"]["live"]
    pids = [w["pid"] for w in live if w["name"].startswith(f"{worker}:")]
    assert pids, live
    return int(pids[-1])


def _assert_same_as_uninterrupted(api: httpx.Client, record: dict, papers_job: dict, corpus: str) -> None:
    assert record["state"] == "succeeded", record["message"]
    assert record["files_failed"] == 0
    assert record["chunks_indexed"] == papers_job["chunks_indexed"]
    summary = corpus_summary(api, corpus)
    assert summary["documents"] == 17
    assert summary["chunks"] == papers_job["chunks_indexed"]
    assert ranked_chunks(api, corpus) == ranked_chunks(api, "papers")


@pytest.mark.slow
def test_sigkill_of_a_pool_process_mid_batch_loses_and_duplicates_nothing(
    api: httpx.Client, service: LiveService, good_papers: Path, papers_job: dict
) -> None:
    api.delete("/cache/embeddings")  # make the job do real embedding work
    corpus = unique_corpus("kill-pool")
    job_id = start(api, good_papers, corpus)
    wait_for(api, job_id, lambda r: r["chunks_embedded"] >= 160)
    os.kill(pool_pid(api, "worker1"), signal.SIGKILL)
    record = wait_job(api, job_id, timeout_s=600)
    _assert_same_as_uninterrupted(api, record, papers_job, corpus)


@pytest.mark.slow
def test_sigkill_of_a_worker_main_process_recovers_after_redelivery(
    api: httpx.Client, service: LiveService, good_papers: Path, papers_job: dict
) -> None:
    api.delete("/cache/embeddings")
    corpus = unique_corpus("kill-main")
    job_id = start(api, good_papers, corpus)
    wait_for(api, job_id, lambda r: r["chunks_embedded"] >= 160)
    victim = service.workers.pop("worker2")
    os.kill(victim.pid, signal.SIGKILL)  # the main process only: its pool child is orphaned
    victim.wait(timeout=10)
    service.start_worker("worker2")  # what `rag up`'s supervisor does
    record = wait_job(api, job_id, timeout_s=600)
    _assert_same_as_uninterrupted(api, record, papers_job, corpus)
    service.wait_healthy(timeout_s=120)


def test_cancel_stops_outstanding_batches_and_keeps_only_committed_documents(
    api: httpx.Client, service: LiveService, good_papers: Path
) -> None:
    api.delete("/cache/embeddings")
    corpus = unique_corpus("cancel")
    job_id = start(api, good_papers, corpus)
    wait_for(api, job_id, lambda r: r["chunks_indexed"] > 0 and r["chunks_embedded"] >= 64)
    resp = api.post(f"/ingest/cancel/{job_id}")
    assert resp.status_code == 202, resp.text
    at_cancel = resp.json()
    assert at_cancel["state"] == "cancelled"
    _wait_until_queues_drain(api)  # whatever was queued for the job has run (and dropped out)
    later = api.get(f"/ingest/status/{job_id}").json()
    assert later["state"] == "cancelled"
    # at most the batches already running on the two workers finished after the cancel
    assert later["chunks_embedded"] - at_cancel["chunks_embedded"] <= 2 * 32
    assert later["chunks_embedded"] < later["chunks_total"] or later["files_parsed"] < 17
    indexed = {f["file"]: f["chunks"] for f in later["files"] if f["outcome"] == "indexed"}
    assert indexed, "a file committed before the cancel must be listed as indexed"
    summary = corpus_summary(api, corpus)
    assert summary["documents"] == len(indexed)
    assert summary["chunks"] == sum(indexed.values())
    for q in PROBE_QUERIES:
        body = {"query": q, "corpus": corpus, "top_k": 20, "use_cache": False}
        for hit in api.post("/search", json=body).json()["results"]:
            assert hit["source"] in indexed
    again = api.post(f"/ingest/cancel/{job_id}")
    assert again.status_code == 409


def _read_sse(url: str, headers: dict[str, str] | None = None, limit: int | None = None) -> list[dict]:
    events: list[dict] = []
    with httpx.stream("GET", url, headers=headers or {}, timeout=60) as r:
        frame: dict[str, str] = {}
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if not line:
                if frame:
                    events.append(frame)
                    if limit and len(events) >= limit:
                        return events
                frame = {}
                continue
            key, _, value = line.partition(": ")
            frame[key] = value
    return events


def test_reconnect_with_last_event_id_resumes_without_gaps_or_repeats(
    api: httpx.Client, service: LiveService, corpus_root: Path
) -> None:
    corpus = unique_corpus("sse")
    folder = corpus_root / corpus
    folder.mkdir()
    for i in range(12):
        (folder / f"note{i:02d}.txt").write_text(
            f"Note {i}: observation number {i} about tidal pools and anemones, sample {i * 7}."
        )
    job_id = start(api, folder, corpus)
    url = f"{service.url}/ingest/events/{job_id}"
    first = _read_sse(url, limit=4)
    rest = _read_sse(url, headers={"Last-Event-ID": first[-1]["id"]})
    assert rest[-1]["event"] == "succeeded"
    full = _read_sse(url)  # a late subscriber: the whole history
    assert [e["id"] for e in first + rest] == [e["id"] for e in full]
    assert full[-1]["event"] == "succeeded"


def test_a_job_whose_work_was_lost_is_failed_as_stalled(service: LiveService, api: httpx.Client) -> None:
    r = redis.Redis.from_url(service.env["RAG_REDIS_URL"])
    jobs = JobStore(r, Keys(service.env["RAG_KEY_PREFIX"]), retention_s=3600)
    # A job record whose scan task never reached the broker: no worker will ever take it.
    job_id = jobs.create(corpus="lost", path="nowhere", abs_path="/nowhere", root="/")
    stall_s = float(service.env["RAG_JOB_STALL_S"])
    record = wait_job(api, job_id, timeout_s=stall_s * 3 + 30)
    assert record["state"] == "failed"
    assert record["message"].startswith("stalled: ")
    assert "RAG_JOB_STALL_S" in record["message"]


def test_retry_redoes_only_what_failed(api: httpx.Client, corpus_root: Path) -> None:
    corpus = unique_corpus("retry")
    folder = corpus_root / corpus
    folder.mkdir()
    (folder / "ok.txt").write_text("Coral reefs bleach when the water is too warm for too long.")
    (folder / "broken.txt").write_bytes(b"")
    first = ingest(api, folder, corpus)
    assert first["files_failed"] == 1
    (folder / "broken.txt").write_text("Kelp forests shelter fish and sea urchins.")
    resp = api.post(f"/ingest/retry/{first['job_id']}")
    assert resp.status_code == 202, resp.text
    retried = wait_job(api, resp.json()["job_id"])
    outcomes = {Path(f["file"]).name: f["outcome"] for f in retried["files"]}
    assert outcomes == {"ok.txt": "unchanged", "broken.txt": "indexed"}
    assert retried["embeddings_computed"] <= 1


def test_list_filters_by_state_and_limits(api: httpx.Client, papers_job: dict) -> None:
    jobs = api.get("/ingest/list", params={"state": "succeeded", "limit": 3}).json()["jobs"]
    assert 1 <= len(jobs) <= 3
    assert all(j["state"] == "succeeded" for j in jobs)
    created = [j["created_at"] for j in jobs]
    assert created == sorted(created, reverse=True)
    assert "files" not in jobs[0]


def test_an_api_restart_loses_no_job_state(api: httpx.Client, service: LiveService, papers_job: dict) -> None:
    before = api.get(f"/ingest/status/{papers_job['job_id']}").json()
    service.restart_api()
    after = api.get(f"/ingest/status/{papers_job['job_id']}").json()
    assert after == before
    body = {"query": "PaperMage toolkit", "corpus": "papers", "top_k": 3, "use_cache": False}
    assert api.post("/search", json=body).json()["results"]
