"""Ingestion of real and broken papers, idempotence, changes, --sync and uploads."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.api import corpus_summary, ingest, search, unique_corpus
from tests.support.data import PAPERS, require
from tests.support.service import wait_job

EXPECTED_FAILURES = {
    "aes-128.pdf": "encrypted: password required",
    "2206.01062_pg3.pdf": "encrypted: password required",
    "ocr_test.pdf": "no extractable text (scanned?)",
}


@pytest.fixture(scope="module")
def tree_corpus() -> str:
    return unique_corpus("tree")


@pytest.fixture(scope="module")
def tree_job(api: httpx.Client, corpus_root: Path, papers_job: dict, tree_corpus: str) -> dict:
    """The whole papers folder, broken files included, in one job."""
    require(PAPERS)
    return ingest(api, corpus_root / "papers", tree_corpus)


def test_whole_tree_indexes_good_files_and_names_each_failure(tree_job: dict, tree_corpus: str, api: httpx.Client) -> None:
    assert tree_job["state"] == "succeeded", tree_job["message"]
    outcomes = {Path(f["file"]).name: f for f in tree_job["files"]}
    for name, reason in EXPECTED_FAILURES.items():
        assert outcomes[name]["outcome"] == "failed", outcomes[name]
        assert outcomes[name]["reason"] == reason
    indexed = {n for n, f in outcomes.items() if f["outcome"] == "indexed"}
    good = {p.name for p in PAPERS.glob("*.pdf")}
    assert good <= indexed
    assert "zen_of_python_corrupted.pdf" in indexed
    # recovered or refused, never hung
    assert outcomes["issue-1113-evil-xobjects.pdf"]["outcome"] in {"indexed", "failed"}
    assert tree_job["files_failed"] == len([f for f in outcomes.values() if f["outcome"] == "failed"])
    assert {e["file"] for e in tree_job["errors"]} == {
        f["file"] for f in tree_job["files"] if f["outcome"] == "failed"
    }
    hits = search(api, tree_corpus, "Beautiful is better than ugly")
    assert Path(hits[0]["source"]).name == "zen_of_python_corrupted.pdf"


def test_known_phrase_of_each_good_paper_is_searchable(tree_job: dict, tree_corpus: str, api: httpx.Client) -> None:
    phrases = {
        "pasa.pdf": "PaSa paper search agent",
        "papermage.pdf": "PaperMage",
        "2302.07302v1.pdf": "CiteSee",
        "2206.10883v3.pdf": "Multi-LexSum",
        "2020.acl-main.447.pdf": "S2ORC",
        "naacl06-shinyama.pdf": "Preemptive Information Extraction",
    }
    for paper, phrase in phrases.items():
        names = [Path(h["source"]).name for h in search(api, tree_corpus, phrase, k=5)]
        assert paper in names, (phrase, names)


def test_second_run_computes_nothing_and_changes_nothing(tree_job: dict, tree_corpus: str, api: httpx.Client, corpus_root: Path) -> None:
    before = corpus_summary(api, tree_corpus)
    again = ingest(api, corpus_root / "papers", tree_corpus)
    assert again["state"] == "succeeded"
    assert again["embeddings_computed"] == 0
    assert again["chunks_indexed"] == 0
    outcomes = {Path(f["file"]).name: f["outcome"] for f in again["files"]}
    assert {o for n, o in outcomes.items() if n not in EXPECTED_FAILURES} == {"unchanged"}
    assert corpus_summary(api, tree_corpus) == before


def test_encrypted_pdf_opens_with_a_job_password(api: httpx.Client, corpus_root: Path) -> None:
    corpus = unique_corpus("enc")
    job = ingest(api, corpus_root / "papers/edge_cases/aes-128.pdf", corpus, passwords=["wrong", "baz"])
    assert job["state"] == "succeeded"
    assert job["files"][0]["outcome"] == "indexed", job["files"]
    assert "Secret" in search(api, corpus, "secret")[0]["text"]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_changed_file_replaces_its_chunks_and_duplicates_are_stored_once(api: httpx.Client, corpus_root: Path) -> None:
    corpus = unique_corpus("edit")
    folder = corpus_root / corpus
    _write(folder / "a.md", "# Photosynthesis\n\nChlorophyll absorbs red light in leaves of plants.")
    _write(folder / "b.txt", "Glaciers retreat when the climate warms; the ice sheet loses mass.")
    _write(folder / "copy-of-b.txt", (folder / "b.txt").read_text())
    first = ingest(api, folder, corpus)
    assert first["state"] == "succeeded", first
    summary = corpus_summary(api, corpus)
    assert summary["documents"] == 2  # b.txt and its copy are one document
    b_hits = [h for h in search(api, corpus, "glaciers ice sheet") if "glacier" in h["text"].lower()]
    assert len(b_hits) == 1

    _write(folder / "a.md", "# Photosynthesis\n\nThe Calvin cycle fixes carbon dioxide into sugar.")
    second = ingest(api, folder, corpus)
    outcomes = {Path(f["file"]).name: f["outcome"] for f in second["files"]}
    assert outcomes == {"a.md": "indexed", "b.txt": "unchanged", "copy-of-b.txt": "unchanged"}
    assert second["chunks_indexed"] == 1
    assert search(api, corpus, "chlorophyll red light") == []
    assert "Calvin" in search(api, corpus, "Calvin cycle carbon")[0]["text"]
    after = corpus_summary(api, corpus)
    assert after["documents"] == 2 and after["chunks"] == summary["chunks"]
    assert after["version"] == summary["version"] + 1


def test_bm25_finds_a_chunk_by_words_just_outside_it(api: httpx.Client, corpus_root: Path) -> None:
    """A chunk's BM25 vector reads RAG_CHUNK_LEXICAL_CONTEXT_TOKENS of the page around it, its
    dense vector the chunk alone: a word a few sentences before or after a chunk finds it too,
    and a word far away never does."""
    corpus = unique_corpus("context")
    folder = corpus_root / corpus
    sentences = [
        f"Observation {i} records the tide at station Q{i}x in calm weather." for i in range(60)
    ]
    text = " ".join(sentences)
    _write(folder / "tides.txt", text)
    job = ingest(api, folder, corpus)
    assert job["state"] == "succeeded", job
    assert job["chunks_indexed"] >= 5
    by_context = 0
    for i in range(60):
        term = f"Q{i}x"
        at = text.index(term)
        hits = search(api, corpus, term, k=10)
        assert any(term in h["text"] for h in hits), term  # the chunks that hold it
        for hit in hits:
            if term in hit["text"]:
                continue
            by_context += 1  # found by its context alone: the term is right next to it
            gap = hit["char_start"] - at if at < hit["char_start"] else at - hit["char_end"]
            assert 0 <= gap < 250, (term, hit["char_start"], hit["char_end"])
    assert by_context >= 10


def test_sync_removes_documents_whose_files_are_gone(api: httpx.Client, corpus_root: Path) -> None:
    corpus = unique_corpus("sync")
    folder = corpus_root / corpus
    _write(folder / "keep.txt", "Volcanic eruptions inject sulfate aerosols into the stratosphere.")
    _write(folder / "gone.txt", "Honeybees communicate the direction of food with a waggle dance.")
    ingest(api, folder, corpus)
    assert corpus_summary(api, corpus)["documents"] == 2
    (folder / "gone.txt").unlink()
    plain = ingest(api, folder, corpus)
    assert corpus_summary(api, corpus)["documents"] == 2, "without --sync nothing is removed"
    assert plain["chunks_indexed"] == 0
    synced = ingest(api, folder, corpus, sync=True)
    assert synced["state"] == "succeeded"
    assert "1 removed" in synced["message"]
    assert corpus_summary(api, corpus)["documents"] == 1
    assert search(api, corpus, "honeybees waggle dance") == []


def test_unreadable_inputs_fail_alone_with_clear_reasons(api: httpx.Client, corpus_root: Path) -> None:
    corpus = unique_corpus("bad")
    folder = corpus_root / corpus
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "junk.pdf").write_bytes(bytes(range(256)) * 40)
    (folder / "latin1.txt").write_bytes("Café au lait, crème brûlée and naïve résumé.".encode("cp1252"))
    (folder / "big.txt").write_bytes(b"word " * (6 * 2**20 // 5))  # over RAG_MAX_FILE_MB=5
    _write(folder / "fine.md", "# Tides\n\nThe moon's gravity raises the ocean tides twice a day.")
    job = ingest(api, folder, corpus)
    assert job["state"] == "succeeded"
    outcomes = {Path(f["file"]).name: f for f in job["files"]}
    assert outcomes["empty.txt"]["reason"] == "empty file"
    assert outcomes["junk.pdf"]["outcome"] == "failed"
    assert outcomes["junk.pdf"]["reason"].startswith("unsupported format")
    assert "RAG_MAX_FILE_MB=5" in outcomes["big.txt"]["reason"]
    assert outcomes["latin1.txt"]["outcome"] == "indexed"
    assert outcomes["fine.md"]["outcome"] == "indexed"
    assert job["files_failed"] == 3
    assert "crème brûlée" in search(api, corpus, "Café crème brûlée")[0]["text"]


def test_upload_sanitises_names_and_refuses_bad_files(api: httpx.Client, service) -> None:
    corpus = unique_corpus("up")
    files = [
        ("files", ("../../escape.txt", b"Sea otters use rocks as tools to open shellfish.", "text/plain")),
        ("files", ("junk.pdf", bytes(range(256)) * 8, "application/pdf")),
        ("files", ("huge.txt", b"x" * (5 * 2**20 + 1), "text/plain")),
        ("files", ("notes.md", b"# Otters\n\nOtters hold hands while sleeping.", "text/markdown")),
    ]
    resp = api.post("/ingest/upload", files=files, data={"corpus": corpus})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    rejected = {r["file"]: r["error"] for r in body["rejected"]}
    assert set(rejected) == {"junk.pdf", "huge.txt"}
    assert "unsupported format" in rejected["junk.pdf"]
    assert "RAG_MAX_FILE_MB" in rejected["huge.txt"]
    job = wait_job(api, body["job_id"])
    assert job["state"] == "succeeded"
    names = sorted(Path(f["file"]).name for f in job["files"])
    assert names == ["escape.txt", "notes.md"]
    assert all(f["file"].startswith("upload/") for f in job["files"])
    uploads = service.data_dir / "uploads"
    assert not (service.data_dir / "escape.txt").exists()
    assert len(list(uploads.rglob("escape.txt"))) == 1
    assert "Sea otters" in search(api, corpus, "otters rocks shellfish")[0]["text"]


def test_upload_with_only_bad_files_is_a_400(api: httpx.Client) -> None:
    resp = api.post("/ingest/upload", files=[("files", ("x.pdf", b"\x00\x01junk", "application/pdf"))],
                    data={"corpus": "default"})
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
    assert "x.pdf" in resp.json()["detail"]
