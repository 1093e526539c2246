"""The three cache tiers against the real service and a real Redis."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.api import corpus_summary, ingest, unique_corpus
from tests.support.service import LiveService


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture()
def small_corpus(api: httpx.Client, corpus_root: Path) -> tuple[str, Path]:
    corpus = unique_corpus("cache")
    folder = corpus_root / corpus
    _write(folder / "otters.md", "# Sea otters\n\nSea otters use rocks as tools to crack open "
           "shellfish. They float on their backs while eating.")
    _write(folder / "bees.md", "# Honeybees\n\nHoneybees communicate the direction of flowers "
           "with a waggle dance. The angle of the dance encodes the direction of the sun.")
    job = ingest(api, folder, corpus)
    assert job["state"] == "succeeded"
    return corpus, folder


def test_second_ask_is_an_answer_hit_with_the_same_answer(api: httpx.Client, small_corpus) -> None:
    corpus, _ = small_corpus
    q = {"question": "How do sea otters open shellfish?", "corpus": corpus}
    first = api.post("/ask", json=q).json()
    second = api.post("/ask", json=q).json()
    assert first["cache_info"]["answer_hit"] is False
    assert second["cache_info"]["answer_hit"] is True
    assert second["answer"] == first["answer"]
    assert second["citations"] == first["citations"]
    assert "rocks" in first["answer"]


def test_search_twice_is_a_retrieval_hit(api: httpx.Client, small_corpus) -> None:
    corpus, _ = small_corpus
    body = {"query": "waggle dance", "corpus": corpus, "top_k": 3}
    first = api.post("/search", json=body).json()
    second = api.post("/search", json=body).json()
    assert (first["cache_info"]["retrieval_hit"], second["cache_info"]["retrieval_hit"]) == (False, True)
    assert second["results"] == first["results"]
    uncached = api.post("/search", json={**body, "use_cache": False}).json()
    assert uncached["cache_info"]["retrieval_hit"] is False
    assert [r["chunk_id"] for r in uncached["results"]] == [r["chunk_id"] for r in first["results"]]


def test_new_document_changes_the_version_and_can_be_cited(api: httpx.Client, small_corpus) -> None:
    corpus, folder = small_corpus
    q = {"question": "Which animal sleeps holding hands?", "corpus": corpus}
    api.post("/ask", json=q)
    assert api.post("/ask", json=q).json()["cache_info"]["answer_hit"] is True
    version = corpus_summary(api, corpus)["version"]
    _write(folder / "hands.md", "# Otter sleep\n\nSea otters sleep holding hands so that they "
           "do not drift apart.")
    ingest(api, folder, corpus)
    assert corpus_summary(api, corpus)["version"] == version + 1
    after = api.post("/ask", json=q).json()
    assert after["cache_info"]["answer_hit"] is False
    assert "hands.md" in {Path(c["source"]).name for c in after["citations"]}


def test_unchanged_reingest_keeps_the_version_and_the_cache(api: httpx.Client, small_corpus) -> None:
    corpus, folder = small_corpus
    q = {"question": "What does the angle of the dance encode?", "corpus": corpus}
    api.post("/ask", json=q)
    version = corpus_summary(api, corpus)["version"]
    again = ingest(api, folder, corpus)
    assert again["chunks_indexed"] == 0
    assert corpus_summary(api, corpus)["version"] == version
    assert api.post("/ask", json=q).json()["cache_info"]["answer_hit"] is True


def _tier_keys(r: redis.Redis, prefix: str, tier: str) -> int:
    return sum(1 for _ in r.scan_iter(match=f"{prefix}:cache:{tier}:*", count=1000))


@pytest.mark.parametrize("tier", ["retrieval", "answers", "embeddings"])
def test_purge_removes_one_tiers_keys_and_leaves_the_others(
    api: httpx.Client, service: LiveService, small_corpus, tier: str
) -> None:
    corpus, _ = small_corpus
    api.post("/ask", json={"question": f"purge {tier}: otters and tools?", "corpus": corpus})
    api.post("/search", json={"query": f"purge {tier} bees", "corpus": corpus})
    r = redis.Redis.from_url(service.env["RAG_REDIS_URL"])
    prefix = service.env["RAG_KEY_PREFIX"]
    before = {t: _tier_keys(r, prefix, t) for t in ("embeddings", "retrieval", "answers")}
    assert all(before.values()), before
    resp = api.delete(f"/cache/{tier}")
    assert resp.status_code == 200
    assert resp.json()["purged"][tier] == before[tier]
    after = {t: _tier_keys(r, prefix, t) for t in before}
    assert after[tier] == 0
    assert {t: n for t, n in after.items() if t != tier} == {t: n for t, n in before.items() if t != tier}
    stats = api.get("/cache/stats").json()["tiers"][tier]
    assert stats["keys"] == 0 and stats["hits"] == 0 and stats["misses"] == 0


def test_unknown_tier_is_404(api: httpx.Client) -> None:
    resp = api.delete("/cache/everything")
    assert resp.status_code == 404
    assert "embeddings" in resp.json()["detail"]


def test_same_files_in_a_second_corpus_are_all_embedding_hits(api: httpx.Client, small_corpus) -> None:
    corpus, folder = small_corpus
    version = corpus_summary(api, corpus)["version"]
    other = unique_corpus("cache2")
    job = ingest(api, folder, other)
    assert job["state"] == "succeeded"
    assert job["embeddings_computed"] == 0
    assert job["embeddings_cached"] == job["chunks_indexed"] > 0
    assert corpus_summary(api, corpus)["version"] == version
    assert corpus_summary(api, other)["documents"] == corpus_summary(api, corpus)["documents"]


def test_each_request_looks_each_tier_up_once(api: httpx.Client, small_corpus) -> None:
    """Exact counts: a cold /search is one retrieval miss, a warm one one hit; a cold /ask is
    one answer miss plus one retrieval miss (its search), a warm one a single answer hit."""
    corpus, _ = small_corpus

    def tiers() -> dict:
        return api.get("/cache/stats").json()["tiers"]

    def moved(before: dict, after: dict) -> dict:
        return {
            t: (after[t]["hits"] - before[t]["hits"], after[t]["misses"] - before[t]["misses"])
            for t in ("retrieval", "answers")
        }

    search = {"query": "otters floating on their backs", "corpus": corpus, "mode": "hybrid"}
    t0 = tiers()
    assert api.post("/search", json=search).json()["cache_info"]["retrieval_hit"] is False
    t1 = tiers()
    assert moved(t0, t1) == {"retrieval": (0, 1), "answers": (0, 0)}
    assert api.post("/search", json=search).json()["cache_info"]["retrieval_hit"] is True
    t2 = tiers()
    assert moved(t1, t2) == {"retrieval": (1, 0), "answers": (0, 0)}

    ask = {"question": "Do otters float while eating?", "corpus": corpus}
    assert api.post("/ask", json=ask).json()["cache_info"]["answer_hit"] is False
    t3 = tiers()
    assert moved(t2, t3) == {"retrieval": (0, 1), "answers": (0, 1)}
    assert api.post("/ask", json=ask).json()["cache_info"]["answer_hit"] is True
    t4 = tiers()
    assert moved(t3, t4) == {"retrieval": (0, 0), "answers": (1, 0)}
    assert set(api.get("/cache/stats").json()["totals"]) >= {
        "keys", "bytes", "hits", "misses", "hit_rate"
    }


@pytest.fixture()
def second_api(service: LiveService, tmp_path: Path):
    """Another API process on the same Redis (its own, empty embedded store, no index queue):
    if it ever computed an answer itself, that answer would differ."""
    port_service = LiveService(
        redis_url=service.env["RAG_REDIS_URL"],
        data_dir=tmp_path / "replica",
        corpus_root=Path(service.env["RAG_CORPUS_ROOT"]),
        workers=0,
        key_prefix=service.env["RAG_KEY_PREFIX"],
        env={"RAG_CONSUME_INDEX": "false"},
    )
    port_service.start()
    yield port_service
    port_service.stop()


def test_concurrent_identical_cold_asks_from_two_api_processes_compute_once(
    api: httpx.Client, service: LiveService, second_api: LiveService, small_corpus
) -> None:
    corpus, _ = small_corpus
    q = {"question": "What do honeybees communicate with a dance?", "corpus": corpus, "top_k": 3}
    computed_before = api.get("/cache/stats").json()["tiers"]["answers"]["computed"]
    urls = [service.url, second_api.url] * 10

    def ask(url: str) -> dict:
        return httpx.post(f"{url}/ask", json=q, timeout=120).json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, urls))
    computed = api.get("/cache/stats").json()["tiers"]["answers"]["computed"] - computed_before
    assert computed == 1
    # One answer for all 20: had both processes computed, the replica (whose store is empty)
    # would have said "No indexed passage ..." and the owner would have cited the dance.
    assert len({a["answer"] for a in answers}) == 1
    assert len({json.dumps(a["citations"], sort_keys=True) for a in answers}) == 1
    assert sum(1 for a in answers if not a["cache_info"]["answer_hit"]) == 1
