"""GET /documents/{doc_id}/pages/{page}.png against the live stack: the cited page with its
passage highlighted, and a clear 404 for everything that has no page to show."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.keys import Keys
from tests.support.service import LiveService, wait_job

pytestmark = pytest.mark.integration

CORPUS = "ui-pages"


def _highlighted_pixels(png: bytes) -> int:
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    # The highlight over white paper: (255, 240, 159), see shared/parsing/render.py.
    return sum(
        1
        for r, g, b in image.getdata()
        if abs(r - 255) < 8 and abs(g - 240) < 8 and abs(b - 159) < 12
    )


@pytest.fixture(scope="module")
def indexed(api: httpx.Client, stack: LiveService, papers: Path) -> dict[str, Any]:
    """pasa.pdf uploaded, test1.pdf ingested from the corpus root, and a Markdown note."""
    root = Path(stack.env["RAG_CORPUS_ROOT"])
    (root / "pages").mkdir(exist_ok=True)
    shutil.copy(papers / "test1.pdf", root / "pages" / "test1.pdf")
    (root / "pages" / "note.md").write_text(
        "# A note\n\nZygomorphic flowers have one plane of symmetry.\n"
    )
    by_path = api.post("/ingest/start", json={"path": "pages", "corpus": CORPUS})
    assert by_path.status_code == 202, by_path.text
    with (papers / "pasa.pdf").open("rb") as fh:
        upload = api.post(
            "/ingest/upload",
            files=[("files", ("pasa.pdf", fh, "application/pdf"))],
            data={"corpus": CORPUS},
        )
    assert upload.status_code == 202, upload.text
    for job_id in (by_path.json()["job_id"], upload.json()["job_id"]):
        record = wait_job(api, job_id)
        assert record["state"] == "succeeded" and record["files_failed"] == 0, record

    def top_hit(query: str, source: str) -> dict[str, Any]:
        hits = api.post(
            "/search", json={"query": query, "corpus": CORPUS, "mode": "bm25", "top_k": 10}
        ).json()["results"]
        return next(h for h in hits if h["source"] == source)

    return {
        "pasa": top_hit("Crawler Selector paper queue", "upload/pasa.pdf"),
        "test1": top_hit("trauma", "pages/test1.pdf"),
        "note": top_hit("zygomorphic flowers", "pages/note.md"),
    }


def _page(api: httpx.Client, hit: dict[str, Any], **params: Any) -> httpx.Response:
    return api.get(
        f"/documents/{hit['doc_id']}/pages/{hit['page']}.png", params={"corpus": CORPUS, **params}
    )


def test_the_cited_chunk_is_highlighted_on_its_page(
    api: httpx.Client, indexed: dict[str, Any]
) -> None:
    hit = indexed["pasa"]
    by_id = _page(api, hit, chunk_id=hit["chunk_id"])
    assert by_id.status_code == 200, by_id.text
    assert by_id.headers["content-type"] == "image/png"
    assert by_id.content.startswith(b"\x89PNG")
    assert by_id.headers["x-page-count"] == "15"
    assert int(by_id.headers["x-highlight-rects"]) >= 3
    assert _highlighted_pixels(by_id.content) > 2000

    by_text = _page(api, hit, text=hit["text"])
    assert by_text.headers["x-highlight-rects"] == by_id.headers["x-highlight-rects"]

    plain = _page(api, hit)
    assert plain.status_code == 200
    assert plain.headers["x-highlight-rects"] == "0"
    assert _highlighted_pixels(plain.content) < 50


def test_a_file_ingested_from_the_corpus_root_is_found(
    api: httpx.Client, indexed: dict[str, Any]
) -> None:
    resp = _page(api, indexed["test1"], chunk_id=indexed["test1"]["chunk_id"])
    assert resp.status_code == 200, resp.text
    assert int(resp.headers["x-highlight-rects"]) >= 1


def test_pages_that_cannot_be_shown_are_404_with_the_reason(
    api: httpx.Client, indexed: dict[str, Any]
) -> None:
    note = _page(api, indexed["note"])
    assert note.status_code == 404
    assert note.json() == {
        "error": "not_found",
        "detail": note.json()["detail"],
    }
    assert "is a markdown document: only pages of PDF documents" in note.json()["detail"]

    pasa = indexed["pasa"]
    beyond = api.get(f"/documents/{pasa['doc_id']}/pages/99.png", params={"corpus": CORPUS})
    assert beyond.status_code == 404
    assert beyond.json()["detail"] == "page 99: pasa.pdf has 15 page(s), numbered from 1"

    elsewhere = api.get(f"/documents/{pasa['doc_id']}/pages/1.png", params={"corpus": "default"})
    assert elsewhere.status_code == 404
    assert "is not in corpus 'default'" in elsewhere.json()["detail"]

    bogus = api.get("/documents/..%2F..%2Fetc/pages/1.png", params={"corpus": CORPUS})
    assert bogus.status_code == 404


def test_a_source_outside_the_corpus_root_is_never_read(
    api: httpx.Client, stack: LiveService, redis_url: str, papers: Path, tmp_path: Path
) -> None:
    """A catalog entry pointing outside RAG_CORPUS_ROOT (written straight into Redis, as no
    ingestion can produce one) gets a 404, even though the file exists and its hash matches."""
    import redis

    outside = tmp_path / "outside.pdf"
    shutil.copy(papers / "test2.pdf", outside)
    doc_id = hashlib.sha256(outside.read_bytes()).hexdigest()
    root = Path(stack.env["RAG_CORPUS_ROOT"])
    escaping = Path(*[".."] * len(root.parts)) / outside.relative_to("/")
    assert (root / escaping).resolve() == outside.resolve()
    keys = Keys(prefix=stack.env["RAG_KEY_PREFIX"])
    entry = {
        "doc_id": doc_id,
        "title": "outside",
        "chunks": 1,
        "chunking": "x",
        "format": "pdf",
        "sources": [escaping.as_posix(), outside.as_posix(), "upload/../../outside.pdf"],
        "external_id": None,
    }
    client = redis.Redis.from_url(redis_url)
    try:
        client.hset(keys.corpus_docs("ui-outside"), doc_id, json.dumps(entry))
        resp = api.get(f"/documents/{doc_id}/pages/1.png", params={"corpus": "ui-outside"})
    finally:
        client.delete(keys.corpus_docs("ui-outside"))
        client.close()
    assert resp.status_code == 404
    assert "its file is no longer where it was ingested" in resp.json()["detail"]


def test_a_file_changed_since_ingestion_is_not_shown(
    api: httpx.Client, stack: LiveService, papers: Path
) -> None:
    root = Path(stack.env["RAG_CORPUS_ROOT"])
    (root / "changing").mkdir(exist_ok=True)
    target = root / "changing" / "example2.pdf"
    shutil.copy(papers / "example2.pdf", target)
    job = api.post("/ingest/start", json={"path": "changing", "corpus": "ui-changing"}).json()
    assert wait_job(api, job["job_id"])["state"] == "succeeded"
    hit = api.post(
        "/search", json={"query": "health", "corpus": "ui-changing", "mode": "bm25", "top_k": 1}
    ).json()["results"][0]
    url = f"/documents/{hit['doc_id']}/pages/{hit['page']}.png"
    assert api.get(url, params={"corpus": "ui-changing"}).status_code == 200
    shutil.copy(papers / "test2.pdf", target)  # other bytes under the same name
    changed = api.get(url, params={"corpus": "ui-changing"})
    assert changed.status_code == 404
    assert "or has changed since" in changed.json()["detail"]
