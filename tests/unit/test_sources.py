"""Where ingestion may read: the corpus root's real files only, never hidden ones."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.errors import InvalidRequestError
from shared.ingest.sources import (
    SourceFile,
    SourceRefusedError,
    list_files,
    resolve_ingest_path,
    source_name,
)


@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(root, outside): a corpus root and a folder beside it holding a secret."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "papers").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("the launch code is 0000")
    (root / "papers" / "good.txt").write_text("tides")
    (root / ".env").write_text("KEY=1")
    (root / ".git").mkdir()
    (root / ".git" / "notes.txt").write_text("hidden")
    (root / "papers" / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "papers" / "env.txt").symlink_to(root / ".env")
    (root / "papers" / "alias.txt").symlink_to(root / "papers" / "good.txt")
    (root / "papers" / "out-dir").symlink_to(outside)
    return root, outside


def test_hidden_files_and_folders_are_refused_when_named(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    for named in (".env", ".git/notes.txt", "papers/../.env", "papers/env.txt", str(root / ".env")):
        with pytest.raises(InvalidRequestError, match="hidden"):
            resolve_ingest_path(named, root=root)


def test_named_paths_must_be_real_ingestible_files_inside_the_root(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    with pytest.raises(InvalidRequestError, match="outside RAG_CORPUS_ROOT"):
        resolve_ingest_path("papers/escape.txt", root=root)
    with pytest.raises(InvalidRequestError, match="outside RAG_CORPUS_ROOT"):
        resolve_ingest_path(str(outside / "secret.txt"), root=root)
    (root / "tool.exe").write_bytes(b"MZ")
    with pytest.raises(InvalidRequestError, match="not an ingestible file"):
        resolve_ingest_path("tool.exe", root=root)
    os.mkfifo(root / "pipe.txt")
    with pytest.raises(InvalidRequestError, match="neither a folder nor a regular file"):
        resolve_ingest_path("pipe.txt", root=root)
    assert resolve_ingest_path("papers/alias.txt", root=root) == root / "papers" / "good.txt"


def test_refusals_never_quote_the_server_paths(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    long_name = "/".join(["a" * 300] * 3)
    for named in (long_name, "missing.txt", "/etc/passwd", ".env"):
        with pytest.raises(InvalidRequestError) as refused:
            resolve_ingest_path(named, root=root)
        assert str(root) not in refused.value.detail
        assert refused.value.detail.startswith("path: ")
    with pytest.raises(InvalidRequestError, match="File name too long"):
        resolve_ingest_path(long_name, root=root)


def test_a_folder_walk_skips_hidden_names_and_symlinked_folders(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    listed = [p.relative_to(root).as_posix() for p in list_files(root)]
    # symlinked files are listed under their own names (reading them checks where they lead);
    # the symlinked folder is not entered, hidden names never listed
    assert listed == ["papers/alias.txt", "papers/env.txt", "papers/escape.txt", "papers/good.txt"]


def test_source_names_are_relative_to_the_root_as_listed(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    assert source_name(root / "papers" / "escape.txt", root=root) == "papers/escape.txt"
    assert source_name(Path("/elsewhere/x.txt"), root=root) == "x.txt"


def test_reading_checks_the_real_path(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(SourceRefusedError, match="symlink leading outside"):
        SourceFile(root / "papers" / "escape.txt", root=root).__enter__()
    with pytest.raises(SourceRefusedError, match="hidden"):
        SourceFile(root / "papers" / "env.txt", root=root).__enter__()
    os.mkfifo(root / "papers" / "fifo.txt")  # must be refused, not block on open
    with pytest.raises(SourceRefusedError, match="not a regular file"):
        SourceFile(root / "papers" / "fifo.txt", root=root).__enter__()
    with pytest.raises(SourceRefusedError, match="no longer exists"):
        SourceFile(root / "papers" / "gone.txt", root=root).__enter__()
    with SourceFile(root / "papers" / "alias.txt", root=root) as source:
        assert source.real == root / "papers" / "good.txt"
        assert source.real.read_text() == "tides"
        source.check_unchanged()


def test_a_file_swapped_for_a_symlink_while_read_is_not_indexed(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    target = root / "papers" / "good.txt"
    with SourceFile(target, root=root) as source:
        target.unlink()
        target.symlink_to(outside / "secret.txt")
        with pytest.raises(SourceRefusedError, match="changed while it was being read"):
            source.check_unchanged()


def test_a_folder_swapped_for_a_symlink_is_caught_on_open(tree: tuple[Path, Path]) -> None:
    root, outside = tree
    (outside / "papers").mkdir()
    (outside / "papers" / "good.txt").write_text("not the corpus")
    os.rename(root / "papers", root / "papers-moved")
    (root / "papers").symlink_to(outside / "papers")
    with pytest.raises(SourceRefusedError, match="outside"):
        SourceFile(root / "papers" / "good.txt", root=root).__enter__()
