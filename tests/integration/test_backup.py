"""`rag backup` while the service runs and serves queries; `rag restore` into a fresh data dir
and an embedded Valkey; a new stack on it answers the same queries with the same results at
the same corpus versions."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx

from services.cli.up import start_embedded_redis
from tests.support.api import corpus_summary, ingest
from tests.support.service import REPO, LiveService, wait_job

QUERIES = [
    ("notes", "how do otters open shellfish", "hybrid"),
    ("notes", "waggle dance direction", "bm25"),
    ("notes", "sleep holding hands", "dense"),
    ("uploaded", "tardigrades survive", "hybrid"),
]


def _rag(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )


def _answers(api: httpx.Client) -> dict[tuple[str, str, str], list[tuple[str, float]]]:
    out = {}
    for corpus, query, mode in QUERIES:
        body = {"query": query, "corpus": corpus, "mode": mode, "top_k": 5, "use_cache": False}
        resp = api.post("/search", json=body)
        assert resp.status_code == 200, resp.text
        out[(corpus, query, mode)] = [(r["chunk_id"], round(r["score"], 5))
                                      for r in resp.json()["results"]]
    return out


def test_a_backup_taken_while_running_restores_into_a_fresh_stack(
    redis_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    notes = root / "notes"
    notes.mkdir(parents=True)
    (notes / "otters.md").write_text("# Sea otters\n\nSea otters use rocks as tools to crack "
                                     "open shellfish. They float on their backs while eating.")
    (notes / "bees.md").write_text("# Honeybees\n\nHoneybees communicate the direction of "
                                   "flowers with a waggle dance.")
    upload = tmp_path / "tardigrades.md"
    upload.write_text("# Tardigrades\n\nTardigrades survive freezing, boiling and the vacuum "
                      "of space by drying out into a tun.")
    source = LiveService(redis_url=redis_url, data_dir=tmp_path / "data-a", corpus_root=root,
                         workers=1, key_prefix=f"bk{uuid.uuid4().hex[:6]}").start()
    client_env = {**source.env, "RAG_API_URL": source.url}
    try:
        with httpx.Client(base_url=source.url, timeout=120) as api:
            assert ingest(api, notes, "notes")["state"] == "succeeded"
            (notes / "hands.md").write_text("# Otter sleep\n\nSea otters sleep holding hands so "
                                            "that they do not drift apart.")
            assert ingest(api, notes, "notes")["state"] == "succeeded"
            with upload.open("rb") as fh:
                accepted = api.post("/ingest/upload", data={"corpus": "uploaded"},
                                    files=[("files", (upload.name, fh))]).json()
            upload_job = wait_job(api, accepted["job_id"])
            assert upload_job["state"] == "succeeded"
            before = _answers(api)
            versions = {c: corpus_summary(api, c) for c in ("notes", "uploaded")}
            assert versions["notes"]["version"] == 3  # one commit per indexed file
            assert versions["uploaded"]["version"] == 1

            # queries keep being served while the backup runs
            failures: list[str] = []
            stop = threading.Event()

            def query_meanwhile() -> None:
                with httpx.Client(base_url=source.url, timeout=120) as other:
                    while not stop.is_set():
                        resp = other.post("/search", json={"query": "otters", "corpus": "notes",
                                                           "use_cache": False})
                        if resp.status_code != 200:
                            failures.append(resp.text)

            searcher = threading.Thread(target=query_meanwhile)
            searcher.start()
            try:
                backups = tmp_path / "backups"
                backups.mkdir()
                done = _rag("backup", str(backups), env=client_env)
            finally:
                stop.set()
                searcher.join(timeout=120)
            assert done.returncode == 0, done.stderr
            assert failures == []
            [archive] = list(backups.glob("rag-backup-*.tar.gz"))
            assert "notes" in done.stdout and not list(backups.glob("*.part"))
            assert not list((tmp_path / "data-a").glob(".backup-*"))  # its work folder is gone
    finally:
        source.stop()

    # restore into a fresh folder, with the embedded Valkey `rag up` would start there
    fresh = tmp_path / "data-b"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"HF_HUB_OFFLINE": "1", "RAG_DATA_DIR": str(fresh), "RAG_KEY_PREFIX": "restored"})
    restored = _rag("restore", str(archive), env=env)
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert "restored" in restored.stdout and "notes" in restored.stdout
    again = _rag("restore", str(archive), env=env)
    assert again.returncode == 2 and "not empty" in again.stderr

    valkey = start_embedded_redis(fresh)
    target = LiveService(redis_url=valkey.connection_url, data_dir=fresh, corpus_root=root,
                         workers=1, key_prefix="restored")
    try:
        target.start()
        with httpx.Client(base_url=target.url, timeout=120) as api:
            assert {c: corpus_summary(api, c) for c in versions} == versions
            assert _answers(api) == before
            jobs = {j["job_id"]: j for j in api.get("/ingest/list").json()["jobs"]}
            assert jobs[upload_job["job_id"]]["state"] == "succeeded"
            assert len(list((fresh / "uploads").rglob("tardigrades.md"))) == 1
            # the upload job points at the restored folder: retrying it finds its file unchanged
            retried = api.post(f"/ingest/retry/{upload_job['job_id']}")
            assert retried.status_code == 202, retried.text
            record = wait_job(api, retried.json()["job_id"])
            assert record["state"] == "succeeded" and record["chunks_indexed"] == 0
            assert record["files"][0]["outcome"] == "unchanged"
    finally:
        target.stop()
        valkey.stop()


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"not a tarball")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_DATA_DIR": str(tmp_path / "data"), "RAG_REDIS_URL": "redis://127.0.0.1:1"})
    result = _rag("restore", str(bogus), env=env)
    assert result.returncode == 2
    assert "not a rag-papers backup" in result.stderr

