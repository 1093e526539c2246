"""Where ingestion may read, which files a folder offers, and the source name of each.

The rule: ingestion reads only regular files whose real path (symlinks resolved) lies inside
the job's root (RAG_CORPUS_ROOT, or the upload's folder), and never a hidden file or anything
in a hidden folder (a name starting with '.'). A path named in a request is checked when the
job starts (`resolve_ingest_path`, a 400); each file is checked again when it is read
(`SourceFile`, a per-file failure), because the tree may change in between.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import TracebackType
from typing import Self

from shared.errors import InvalidRequestError
from shared.parsing import ParseError

INGESTIBLE_SUFFIXES = frozenset(
    {".pdf", ".md", ".markdown", ".txt", ".text", ".html", ".htm", ".jsonl"}
)
_ROOT = "the corpus root (RAG_CORPUS_ROOT)"


class SourceRefusedError(ParseError):
    """A file ingestion must not read: it leads outside the root, is hidden or not a regular
    file, or changed while it was read. It fails that file, never the job."""

    code = "source_refused"


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in parts)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_ingest_path(path: str, *, root: Path) -> Path:
    """The real path to ingest; a 400 naming the field when it may not be read.

    Refused: a path outside RAG_CORPUS_ROOT (also through a symlink), a hidden file or folder,
    anything but a folder or a regular file, and a file without an ingestible extension.
    Messages never quote the server's own paths.
    """
    if not path:
        raise InvalidRequestError("path: must not be empty")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        lexical = Path(os.path.normpath(candidate))
        resolved = candidate.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise InvalidRequestError(
            f"path: {_shown(path)} cannot be resolved ({_reason(exc)})"
        ) from None
    if not _inside(resolved, root):
        raise InvalidRequestError(
            f"path: {_shown(path)} is outside RAG_CORPUS_ROOT, the server's corpus folder; name a "
            "path inside it, or upload the files with POST /ingest/upload"
        )
    named = lexical.relative_to(root).parts if _inside(lexical, root) else ()
    if _hidden(named) or _hidden(resolved.relative_to(root).parts):
        raise InvalidRequestError(
            f"path: {_shown(path)} is hidden (a name starting with '.'); hidden files and folders "
            "are never ingested"
        )
    try:
        info = resolved.stat()
    except FileNotFoundError:
        raise InvalidRequestError(
            f"path: {_shown(path)} does not exist under RAG_CORPUS_ROOT"
        ) from None
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"path: {_shown(path)} cannot be read ({_reason(exc)})") from None
    if stat.S_ISDIR(info.st_mode):
        return resolved
    if not stat.S_ISREG(info.st_mode):
        raise InvalidRequestError(f"path: {_shown(path)} is neither a folder nor a regular file")
    if resolved.suffix.lower() not in INGESTIBLE_SUFFIXES:
        raise InvalidRequestError(
            f"path: {_shown(path)} is not an ingestible file; use "
            + ", ".join(sorted(INGESTIBLE_SUFFIXES))
        )
    return resolved


def list_files(path: Path) -> list[Path]:
    """A file as given; a folder's ingestible files, recursively, in a stable order.

    Hidden files and folders are skipped, and symlinked folders are not entered. Symlinked
    files are listed under their own names: reading them checks where they lead.
    """
    if not path.is_dir():
        return [path]
    found: list[Path] = []
    for folder, dirs, files in os.walk(path):  # followlinks=False
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(
            Path(folder) / name
            for name in files
            if not name.startswith(".") and Path(name).suffix.lower() in INGESTIBLE_SUFFIXES
        )
    return sorted(found)


def source_name(path: Path, *, root: Path) -> str:
    """A file's name in the catalog and in every response: its path under the job's root, as
    listed (a symlink keeps its own name). Never an absolute server path."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def source_scope(path: Path, *, root: Path) -> str:
    """The source prefix a job over `path` owns, for --sync."""
    name = source_name(path, root=root)
    return name if path.is_file() else (f"{name}/" if name != "." else "")


class SourceFile:
    """One file to ingest, checked where it really is and held open while it is read.

    On entry: the real path must lie inside `root`, not be hidden and be a regular file; it is
    then opened without following a symlink, and the opened file must be the one at that real
    path (Linux: /proc/self/fd), so a symlink swapped in after the check is caught. Parsers read
    `real`; `check_unchanged()` after reading confirms the file at `real` is still the one
    opened, so a swap during the read fails the file instead of indexing what it led to.
    """

    def __init__(self, path: Path, *, root: Path) -> None:
        self.path = path
        self.root = root
        self.real = path
        self._fd: int | None = None
        self._identity: tuple[int, int] = (0, 0)

    def __enter__(self) -> Self:
        symlink = self.path.is_symlink()
        try:
            self.real = Path(os.path.realpath(self.path))
        except (OSError, ValueError) as exc:
            raise SourceRefusedError(f"cannot be resolved ({_reason(exc)}); not read") from None
        if not _inside(self.real, self.root):
            what = "a symlink leading" if symlink else "resolves to a file"
            raise SourceRefusedError(f"{what} outside {_ROOT}; not read")
        if _hidden(self.real.relative_to(self.root).parts):
            raise SourceRefusedError("a symlink to a hidden file; not read")
        try:
            info = os.stat(self.real, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                raise SourceRefusedError("not a regular file; not read")
            flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
            self._fd = os.open(self.real, flags)
        except FileNotFoundError:
            raise SourceRefusedError("no longer exists") from None
        except OSError as exc:
            raise SourceRefusedError(f"could not be read: {_reason(exc)}") from None
        opened = os.fstat(self._fd)
        if not stat.S_ISREG(opened.st_mode) or not self._opened_at_real_path(opened):
            self.close()
            raise SourceRefusedError("changed while it was being checked; not read")
        self._identity = (opened.st_dev, opened.st_ino)
        return self

    def _opened_at_real_path(self, opened: os.stat_result) -> bool:
        assert self._fd is not None
        proc = Path(f"/proc/self/fd/{self._fd}")
        if proc.parent.is_dir():
            return os.readlink(proc) == str(self.real)
        try:
            now = os.stat(self.real, follow_symlinks=False)
        except OSError:
            return False
        return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)

    def check_unchanged(self) -> None:
        """Raise SourceRefusedError unless `real` still is the file opened on entry."""
        try:
            again = Path(os.path.realpath(self.real))
            now = os.stat(self.real, follow_symlinks=False)
        except OSError:
            raise SourceRefusedError("changed while it was being read; not indexed") from None
        if again != self.real or (now.st_dev, now.st_ino) != self._identity:
            raise SourceRefusedError("changed while it was being read; not indexed")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _shown(path: str, limit: int = 200) -> str:
    """The path a request named, quoted, cut short if long."""
    return repr(path if len(path) <= limit else path[:limit] + "...")


def _reason(exc: BaseException) -> str:
    """An OS error's reason without the path it names."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, RuntimeError):
        return "symlink loop"
    return str(exc) or type(exc).__name__
