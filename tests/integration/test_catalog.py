"""The corpus catalog's commit rules on a real Redis."""

from __future__ import annotations

import uuid

import pytest
import redis

from shared.keys import Keys
from shared.state.catalog import Catalog, DocumentEntry


@pytest.fixture()
def catalog(redis_url: str) -> Catalog:
    return Catalog(redis.Redis.from_url(redis_url), Keys(f"cat{uuid.uuid4().hex[:6]}"))


def doc(doc_id: str, chunks: int = 3, chunking: str = "s1") -> DocumentEntry:
    return DocumentEntry(doc_id=doc_id, title=doc_id.upper(), chunks=chunks, chunking=chunking, format="text")


def test_first_commit_creates_the_corpus_and_bumps_the_version(catalog: Catalog) -> None:
    result = catalog.commit("c", placements={"a.txt": doc("A")})
    assert result.changed and result.version == 1 and result.orphaned == []
    assert catalog.corpora() == ["c"]
    assert catalog.summary("c") == {"name": "c", "documents": 1, "chunks": 3, "version": 1}


def test_recommitting_the_same_placement_changes_nothing(catalog: Catalog) -> None:
    catalog.commit("c", placements={"a.txt": doc("A")})
    again = catalog.commit("c", placements={"a.txt": doc("A")})
    assert not again.changed and again.version == 1


def test_same_bytes_under_two_names_is_one_document(catalog: Catalog) -> None:
    catalog.commit("c", placements={"a.txt": doc("A")})
    catalog.commit("c", placements={"copy.txt": doc("A")})
    assert catalog.document("c", "A").sources == ["a.txt", "copy.txt"]
    assert catalog.summary("c")["documents"] == 1


def test_changed_file_orphans_its_old_document(catalog: Catalog) -> None:
    catalog.commit("c", placements={"a.txt": doc("A")})
    result = catalog.commit("c", placements={"a.txt": doc("A2", chunks=5)})
    assert result.orphaned == ["A"]
    assert catalog.source_doc("c", "a.txt") == "A2"
    assert catalog.summary("c") == {"name": "c", "documents": 1, "chunks": 5, "version": 2}


def test_a_shared_document_survives_losing_one_name(catalog: Catalog) -> None:
    catalog.commit("c", placements={"a.txt": doc("A"), "b.txt": doc("A")})
    result = catalog.commit("c", placements={}, removed_sources=["a.txt"])
    assert result.orphaned == []
    assert catalog.document("c", "A").sources == ["b.txt"]
    gone = catalog.commit("c", placements={}, removed_sources=["b.txt"])
    assert gone.orphaned == ["A"] and catalog.summary("c")["documents"] == 0


def test_new_chunking_replaces_the_entry(catalog: Catalog) -> None:
    catalog.commit("c", placements={"a.txt": doc("A", chunks=3, chunking="s1")})
    result = catalog.commit("c", placements={"a.txt": doc("A", chunks=4, chunking="s2")})
    assert result.changed and result.orphaned == []
    assert catalog.document("c", "A").chunking == "s2"
    assert catalog.document("c", "A").chunks == 4
