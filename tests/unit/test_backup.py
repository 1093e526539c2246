"""The parts of a backup that need no server: the store's snapshot and the manifest checks."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from shared.backup import FORMAT, read_manifest
from shared.errors import InvalidRequestError
from shared.vectors.store.edge import EdgeStore
from tests.support.store_contract import DIM, ENCODER, chunk, unit


def test_a_snapshot_opens_as_the_same_store_and_the_original_keeps_serving(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path / "live")
    store.ensure_corpus("papers", dim=DIM)
    store.upsert("papers", [chunk("papers", f"d{i}", 0, text=f"genes {i}") for i in range(5)])
    store.delete_documents("papers", ["d4"])
    before = store.search_sparse("papers", ENCODER.encode_query("genes"), limit=10)

    store.snapshot(tmp_path / "copy")

    # the original reopens its shard on the next call, and still takes writes
    assert store.count("papers") == 4
    store.upsert("papers", [chunk("papers", "d9", 0, text="genes later")])
    assert store.count("papers") == 5
    copy = EdgeStore(tmp_path / "copy")
    try:
        assert copy.corpora() == ["papers"]
        assert copy.count("papers") == 4
        after = copy.search_sparse("papers", ENCODER.encode_query("genes"), limit=10)
        assert [h.id for h in after] == [h.id for h in before]
        assert copy.search_dense("papers", unit(1.0), limit=1)
    finally:
        copy.close()
        store.close()


def test_a_store_never_written_snapshots_as_an_empty_folder(tmp_path: Path) -> None:
    EdgeStore(tmp_path / "never").snapshot(tmp_path / "copy")
    assert (tmp_path / "copy").is_dir() and EdgeStore(tmp_path / "copy").corpora() == []


def _archive(path: Path, manifest: object) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        blob = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
    return path


def test_manifests_of_other_formats_or_newer_versions_are_refused(tmp_path: Path) -> None:
    ok = _archive(tmp_path / "ok.tar.gz", {"format": FORMAT, "format_version": 1, "corpora": {}})
    assert read_manifest(ok)["format_version"] == 1
    other = _archive(tmp_path / "other.tar.gz", {"format": "something-else"})
    with pytest.raises(InvalidRequestError, match="not a rag-papers backup"):
        read_manifest(other)
    newer = _archive(tmp_path / "newer.tar.gz", {"format": FORMAT, "format_version": 99})
    with pytest.raises(InvalidRequestError, match="newer"):
        read_manifest(newer)
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    with pytest.raises(InvalidRequestError, match="not a rag-papers backup"):
        read_manifest(tmp_path / "junk.tar.gz")
