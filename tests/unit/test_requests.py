"""Request-level validation that needs no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.api.routes.ingest import safe_upload_name
from shared.errors import InvalidRequestError
from shared.identity import check_corpus_name, point_id
from shared.ingest.sources import list_files, resolve_ingest_path, source_scope
from shared.state.jobs import _progress_estimate


@pytest.mark.parametrize(
    "name,expected",
    [("../../etc/passwd", "passwd"), ("a/b\\c.pdf", "c.pdf"), ("ok paper.pdf", "ok paper.pdf"),
     ("we$ird*name?.md", "we_ird_name_.md"), (".hidden.txt", "hidden.txt")],
)
def test_upload_names_are_reduced_to_a_safe_last_component(name: str, expected: str) -> None:
    assert safe_upload_name(name) == expected


@pytest.mark.parametrize("name", ["", "..", "/", "...."])
def test_unusable_upload_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequestError, match="not a usable file name"):
        safe_upload_name(name)


def test_ingest_paths_must_stay_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "papers").mkdir(parents=True)
    assert resolve_ingest_path("papers", root=root) == root / "papers"
    with pytest.raises(InvalidRequestError, match="RAG_CORPUS_ROOT"):
        resolve_ingest_path("../", root=root)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(InvalidRequestError, match="outside RAG_CORPUS_ROOT"):
        resolve_ingest_path("link", root=root)
    with pytest.raises(InvalidRequestError, match="does not exist"):
        resolve_ingest_path("missing", root=root)


def test_folder_listing_is_recursive_sorted_and_skips_hidden_and_foreign_files(tmp_path: Path) -> None:
    for name in ["b.pdf", "a/c.md", "a/d.exe", ".git/e.txt", "f.TXT", "g.jsonl"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in list_files(tmp_path)] == [
        "a/c.md", "b.pdf", "f.TXT", "g.jsonl"]
    assert source_scope(tmp_path / "a", root=tmp_path) == "a/"
    assert source_scope(tmp_path / "b.pdf", root=tmp_path) == "b.pdf"
    assert source_scope(tmp_path, root=tmp_path) == ""


def test_corpus_names() -> None:
    assert check_corpus_name("lab-2024_v1") == "lab-2024_v1"
    for bad in ["", "../x", "a b", "-lead", "x" * 65]:
        with pytest.raises(InvalidRequestError, match="corpus"):
            check_corpus_name(bad)


def test_point_ids_are_stable_and_depend_on_chunking() -> None:
    a = point_id(doc_id="d", chunk_index=3, chunking_signature="s1")
    assert a == point_id(doc_id="d", chunk_index=3, chunking_signature="s1")
    assert a != point_id(doc_id="d", chunk_index=3, chunking_signature="s2")
    assert a != point_id(doc_id="d", chunk_index=4, chunking_signature="s1")


def test_progress_estimate_counts_parsing_and_embedding() -> None:
    assert _progress_estimate({"files_total": "0"}) == 0.0
    half_parsed = _progress_estimate({"files_total": "2", "files_parsed": "1", "chunks_total": "0"})
    assert 0.4 < half_parsed < 0.5
    done = _progress_estimate({"files_total": "2", "files_parsed": "2", "chunks_total": "10",
                               "chunks_embedded": "10"})
    assert 0.95 < done < 1.0  # 1.0 only when the job has committed and finished
