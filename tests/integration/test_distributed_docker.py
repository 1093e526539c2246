"""The distributed topology: Redis and a Qdrant server in containers; two API processes and two
workers consuming all three queues (the workers write to Qdrant; no API owns a store).

Runs wherever a Docker engine answers; elsewhere it skips and says why.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import corpus_summary, ingest, unique_corpus
from tests.support.docker import docker_unavailable
from tests.support.metrics import scrape, total
from tests.support.service import REPO, LiveService

REDIS_IMAGE = os.environ.get("RAG_TEST_REDIS_IMAGE", "valkey/valkey:8")
QDRANT_IMAGE = os.environ.get("RAG_TEST_QDRANT_IMAGE", "qdrant/qdrant:latest")
N_FILES = 24


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[str, str]]:
    """(Redis URL, Qdrant URL) of servers in containers."""
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"the distributed topology needs Docker ({REDIS_IMAGE}, {QDRANT_IMAGE}): {reason}")
    from testcontainers.community.qdrant import QdrantContainer
    from testcontainers.community.redis import RedisContainer

    with RedisContainer(REDIS_IMAGE) as redis_box, QdrantContainer(image=QDRANT_IMAGE) as qdrant:
        redis_url = f"redis://{redis_box.get_container_host_ip()}:{redis_box.get_exposed_port(6379)}/0"
        yield redis_url, f"http://{qdrant.rest_host_address}"


@pytest.fixture(scope="module")
def cluster(servers: tuple[str, str], tmp_path_factory: pytest.TempPathFactory):
    """Two API processes (no store of their own) and two workers (every queue), one Redis."""
    redis_url, qdrant_url = servers
    root = tmp_path_factory.mktemp("dist-root")
    common = {"redis_url": redis_url, "corpus_root": root, "key_prefix": f"d{uuid.uuid4().hex[:6]}"}
    env = {"RAG_QDRANT_URL": qdrant_url}
    first = LiveService(data_dir=tmp_path_factory.mktemp("dist-1"), workers=2, env=env, **common)
    second = LiveService(data_dir=tmp_path_factory.mktemp("dist-2"), workers=0, env=env, **common)
    first.start()
    try:
        second.start()
        yield first, second, qdrant_url
    finally:
        second.stop()
        first.stop()


@pytest.fixture(scope="module")
def notes(cluster) -> tuple[str, dict]:
    first, _, _ = cluster
    corpus = unique_corpus("dist")
    folder = Path(first.env["RAG_CORPUS_ROOT"]) / corpus
    folder.mkdir()
    for i in range(N_FILES):
        (folder / f"note-{i:02d}.md").write_text(
            f"# Field note {i}\n\nThe otters of bay {i} used {i % 4 + 1} kinds of rocks as tools "
            f"to crack open shellfish, and floated on their backs while eating."
        )
    with httpx.Client(base_url=first.url, timeout=120) as api:
        job = ingest(api, folder, corpus)
    assert job["state"] == "succeeded", job
    return corpus, job


def test_both_workers_share_the_work_and_write_to_qdrant(cluster, notes) -> None:
    first, second, qdrant_url = cluster
    corpus, job = notes
    assert job["files_done"] == N_FILES and job["files_failed"] == 0
    assert len(job["workers"]) == 2, job["workers"]  # both embedded batches
    health = httpx.get(f"{second.url}/health", timeout=30).json()
    assert health["status"] == "ok" and health["store"]["owner"] == "shared"
    assert all(set(w["queues"]) == {"ingest", "embed", "index"}
               for w in health["workers"]["live"])
    from qdrant_client import QdrantClient

    from shared.vectors.store.qdrant import QdrantStore

    store = QdrantStore(QdrantClient(url=qdrant_url))
    try:
        assert store.count(corpus) == job["chunks_indexed"] == corpus_summary(
            httpx.Client(base_url=second.url), corpus)["chunks"]
    finally:
        store.close()
    # index and finalize ran in the workers: every process's counts reach either API
    samples = scrape(second.url)
    assert total(samples, "rag_tasks_total", task="rag.index", outcome="success") >= N_FILES
    assert total(samples, "rag_tasks_total", task="rag.finalize", outcome="success") >= 1


def test_both_apis_search_the_same_store_and_share_the_caches(cluster, notes) -> None:
    first, second, _ = cluster
    corpus, _ = notes
    body = {"query": "otters crack shellfish with rocks", "corpus": corpus, "top_k": 5}
    uncached = [httpx.post(f"{api.url}/search", json={**body, "use_cache": False}, timeout=120).json()
                for api in (first, second)]
    assert uncached[0]["results"] and uncached[0]["results"] == uncached[1]["results"]
    ask = {"question": "What do the otters use to open shellfish?", "corpus": corpus}
    on_first = httpx.post(f"{first.url}/ask", json=ask, timeout=120).json()
    on_second = httpx.post(f"{second.url}/ask", json=ask, timeout=120).json()
    assert (on_first["cache_info"]["answer_hit"], on_second["cache_info"]["answer_hit"]) == (False, True)
    assert on_second["answer"] == on_first["answer"] and "rocks" in on_first["answer"]


def test_each_worker_host_passes_its_probe(cluster) -> None:
    first, _, _ = cluster
    for name in ("worker1", "worker2"):
        probe = subprocess.run(
            [sys.executable, "-m", "services.cli.main", "probe", "worker", "--name", name],
            env=first.env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
        )
        assert probe.returncode == 0, probe.stderr


def test_no_api_takes_an_embedded_backup_of_a_qdrant_server(cluster) -> None:
    first, _, _ = cluster
    resp = httpx.post(f"{first.url}/admin/backup", timeout=60)
    assert resp.status_code == 409 and "Qdrant snapshots" in resp.json()["detail"]
