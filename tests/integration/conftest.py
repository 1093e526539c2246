"""One live deployment (real Redis, API process, two worker processes) for the session."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.data import PAPERS, require
from tests.support.service import SHARED_DATA, LiveService, wait_job


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus-root")
    if SHARED_DATA.exists():
        shutil.copytree(SHARED_DATA / "papers", root / "papers")
    return root


@pytest.fixture(scope="session")
def service(redis_url: str, corpus_root: Path, tmp_path_factory: pytest.TempPathFactory):
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("data"),
        corpus_root=corpus_root,
        workers=2,
        key_prefix=f"t{uuid.uuid4().hex[:6]}",
        env={"RAG_JOB_REDELIVERY_S": "20", "RAG_JOB_STALL_S": "30", "RAG_MAX_FILE_MB": "5"},
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def api(service: LiveService):
    with httpx.Client(base_url=service.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def good_papers(corpus_root: Path) -> Path:
    folder = corpus_root / "good-papers"
    if not (corpus_root / "papers").exists():
        require(PAPERS)
    if not folder.exists():
        folder.mkdir()
        for pdf in sorted((corpus_root / "papers").glob("*.pdf")):
            shutil.copy(pdf, folder / pdf.name)
    return folder


@pytest.fixture(scope="session")
def papers_job(api: httpx.Client, good_papers: Path) -> dict:
    """The 17 good papers ingested once into corpus `papers` (several tests read it)."""
    resp = api.post("/ingest/start", json={"path": str(good_papers), "corpus": "papers"})
    assert resp.status_code == 202, resp.text
    return wait_job(api, resp.json()["job_id"], timeout_s=900)

