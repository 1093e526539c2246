"""Two API replicas on one Redis: A owns the embedded store and consumes `index`; B
(RAG_CONSUME_INDEX=false) has its own, empty store. A job started on A is watched, cancelled
and retried through B; caches, single flight and metrics hold across both. B never computes
an answer or a search itself in these tests: with its empty store it would find nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.api import ingest, unique_corpus
from tests.support.metrics import scrape, total
from tests.support.service import LiveService, wait_job

N_FILES = 60


@pytest.fixture(scope="module")
def replicas(redis_url: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("replicas-root")
    prefix = f"rp{uuid.uuid4().hex[:6]}"
    a = LiveService(redis_url=redis_url, data_dir=tmp_path_factory.mktemp("replica-a"),
                    corpus_root=root, workers=1, key_prefix=prefix)
    b = LiveService(redis_url=redis_url, data_dir=tmp_path_factory.mktemp("replica-b"),
                    corpus_root=root, workers=0, key_prefix=prefix,
                    env={"RAG_CONSUME_INDEX": "false"})
    a.start()
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def events(url: str, job_id: str, *, last_id: str = "") -> Iterator[tuple[str, str, dict]]:
    """(id, event, record) from GET /ingest/events, resuming after `last_id` if given."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    timeout = httpx.Timeout(30, read=60)
    with httpx.stream("GET", f"{url}/ingest/events/{job_id}", headers=headers, timeout=timeout) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        event_id, name, data = "", "message", []
        for line in resp.iter_lines():
            if line == "":
                if data:
                    yield event_id, name, json.loads("\n".join(data))
                event_id, name, data = "", "message", []
            elif line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())


def _order(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def test_a_job_started_on_one_replica_is_watched_cancelled_and_retried_through_the_other(
    replicas: tuple[LiveService, LiveService],
) -> None:
    a, b = replicas
    corpus = unique_corpus("many")
    folder = Path(a.env["RAG_CORPUS_ROOT"]) / corpus
    folder.mkdir()
    for i in range(N_FILES):
        (folder / f"note-{i:03d}.md").write_text(
            f"# Note {i}\n\nObservation {i}: the colony of species {i % 17} moved north "
            f"after the {i % 5}th frost of the season."
        )
    started = httpx.post(f"{a.url}/ingest/start", json={"path": str(folder), "corpus": corpus})
    assert started.status_code == 202
    job_id = started.json()["job_id"]

    # watch on B until files are done, drop the connection, resume after the second event seen
    seen: list[tuple[str, str, dict]] = []
    for event in events(b.url, job_id):
        seen.append(event)
        if len(seen) >= 3 and event[2]["files_done"] >= 1:
            break
    assert all(name == "progress" for _, name, _ in seen)
    resumed = events(b.url, job_id, last_id=seen[1][0])
    first_after = next(resumed)
    resumed.close()
    assert first_after[0] == seen[2][0]  # exactly the next event, nothing skipped or repeated
    assert _order(seen[0][0]) < _order(seen[1][0]) < _order(seen[2][0])

    cancel = httpx.post(f"{b.url}/ingest/cancel/{job_id}", timeout=60)
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["state"] == "cancelled"
    tail = list(events(b.url, job_id, last_id=seen[-1][0]))
    assert tail[-1][1] == "cancelled" and tail[-1][2]["state"] == "cancelled"
    cancelled = httpx.get(f"{a.url}/ingest/status/{job_id}").json()
    assert cancelled["state"] == "cancelled" and cancelled["files_done"] < N_FILES

    retry = httpx.post(f"{b.url}/ingest/retry/{job_id}", timeout=60)
    assert retry.status_code == 202, retry.text
    new_id = retry.json()["job_id"]
    final = [e for e in events(a.url, new_id)][-1]
    assert final[1] == "succeeded", final
    record = httpx.get(f"{b.url}/ingest/status/{new_id}").json()
    assert record["retry_of"] == job_id
    assert record["files_done"] == N_FILES and record["files_failed"] == 0
    corpora = {c["name"]: c for c in httpx.get(f"{b.url}/corpora").json()["corpora"]}
    assert corpora[corpus]["documents"] == N_FILES


@pytest.fixture(scope="module")
def small_corpus(replicas: tuple[LiveService, LiveService]) -> str:
    a, _ = replicas
    corpus = unique_corpus("two")
    folder = Path(a.env["RAG_CORPUS_ROOT"]) / corpus
    folder.mkdir()
    (folder / "otters.md").write_text("# Sea otters\n\nSea otters use rocks as tools to crack "
                                      "open shellfish. They float on their backs while eating.")
    (folder / "bees.md").write_text("# Honeybees\n\nHoneybees communicate the direction of "
                                    "flowers with a waggle dance.")
    with httpx.Client(base_url=a.url, timeout=120) as api:
        assert ingest(api, folder, corpus)["state"] == "succeeded"
    return corpus


def test_what_one_replica_cached_the_other_serves(
    replicas: tuple[LiveService, LiveService], small_corpus: str
) -> None:
    a, b = replicas
    ask = {"question": "What do sea otters crack open?", "corpus": small_corpus}
    search = {"query": "waggle dance", "corpus": small_corpus, "top_k": 3}
    on_a = httpx.post(f"{a.url}/ask", json=ask, timeout=120).json()
    on_b = httpx.post(f"{b.url}/ask", json=ask, timeout=120).json()
    assert on_a["cache_info"]["answer_hit"] is False and "rocks" in on_a["answer"]
    assert on_b["cache_info"]["answer_hit"] is True and on_b["answer"] == on_a["answer"]
    found_a = httpx.post(f"{a.url}/search", json=search, timeout=120).json()
    found_b = httpx.post(f"{b.url}/search", json=search, timeout=120).json()
    assert found_b["cache_info"]["retrieval_hit"] is True
    assert found_b["results"] == found_a["results"] and found_a["results"]


def test_identical_cold_asks_on_both_replicas_compute_once(
    replicas: tuple[LiveService, LiveService], small_corpus: str
) -> None:
    a, b = replicas
    q = {"question": "How do honeybees show where flowers are?", "corpus": small_corpus,
         "top_k": 3}
    computed = httpx.get(f"{a.url}/cache/stats").json()["tiers"]["answers"]["computed"]
    urls = [a.url, b.url] * 8
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(
            lambda url: httpx.post(f"{url}/ask", json=q, timeout=120).json(), urls
        ))
    stats = httpx.get(f"{b.url}/cache/stats").json()["tiers"]["answers"]
    assert stats["computed"] - computed == 1
    assert len({x["answer"] for x in answers}) == 1
    [leader] = [url for url, x in zip(urls, answers, strict=True) if not x["cache_info"]["answer_hit"]]
    # whichever replica won computed it; the other served its answer (B's store is empty)
    expected = "waggle" if leader == a.url else "do not seem to cover this question"
    assert expected in answers[0]["answer"]


def test_either_replica_reports_the_whole_clusters_metrics(
    replicas: tuple[LiveService, LiveService], small_corpus: str
) -> None:
    a, b = replicas
    marker = f"/ingest/status/{uuid.uuid4().hex}"
    for _ in range(3):
        assert httpx.get(f"{a.url}{marker}").status_code == 404  # counted on A only
    deadline = time.monotonic() + 30
    while True:  # A flushes its counts every few seconds
        from_b = scrape(b.url)
        counted = total(from_b, "rag_http_request_duration_seconds_count",
                        route="/ingest/status/{job_id}", status="404")
        if counted >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert counted >= 3
    # index and finalize run only in A's consumer, parse only in A's worker
    for task, at_least in (("rag.index", 2), ("rag.finalize", 1), ("rag.parse", 2)):
        assert total(from_b, "rag_tasks_total", task=task, outcome="success") >= at_least, task
    from_a = scrape(a.url)
    assert total(from_a, "rag_tasks_total") == total(from_b, "rag_tasks_total")


def test_only_the_store_owner_takes_backups(replicas: tuple[LiveService, LiveService]) -> None:
    _, b = replicas
    resp = httpx.post(f"{b.url}/admin/backup", timeout=60)
    assert resp.status_code == 409
    assert "RAG_CONSUME_INDEX=false" in resp.json()["detail"]


def test_jobs_listed_on_either_replica_are_the_same(
    replicas: tuple[LiveService, LiveService], small_corpus: str
) -> None:
    a, b = replicas
    listed = [{j["job_id"]: j["state"] for j in httpx.get(f"{r.url}/ingest/list").json()["jobs"]}
              for r in (a, b)]
    assert listed[0] == listed[1] and listed[0]
    assert wait_job(httpx.Client(base_url=b.url), next(iter(listed[0])))["state"] in (
        "succeeded", "cancelled"
    )
