"""Where ingestion may read, which files a folder offers, and the source name of each."""

from __future__ import annotations

from pathlib import Path

from shared.errors import InvalidRequestError

INGESTIBLE_SUFFIXES = frozenset(
    {".pdf", ".md", ".markdown", ".txt", ".text", ".html", ".htm", ".jsonl"}
)


def resolve_ingest_path(path: str, *, root: Path) -> Path:
    """The absolute path to ingest; a 400 naming RAG_CORPUS_ROOT when it lies outside."""
    if not path:
        raise InvalidRequestError("path: must not be empty")
    candidate = Path(path)
    if not candidate.is_absolute():
        candidate = root / candidate
    resolved = candidate.resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidRequestError(
            f"path: {path!r} is outside RAG_CORPUS_ROOT ({root}); set RAG_CORPUS_ROOT to a "
            "folder that contains it, or upload the files with POST /ingest/upload"
        )
    if not resolved.exists():
        raise InvalidRequestError(f"path: {path!r} does not exist under {root}")
    return resolved


def list_files(path: Path) -> list[Path]:
    """A file as given; a folder's ingestible files, recursively, in a stable order."""
    if path.is_file():
        return [path]
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.suffix.lower() in INGESTIBLE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def source_name(path: Path, *, root: Path) -> str:
    """A file's name in the catalog: its path under the corpus root (or the uploads folder)."""
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def source_scope(path: Path, *, root: Path) -> str:
    """The source prefix a job over `path` owns, for --sync."""
    name = source_name(path, root=root)
    return name if path.is_file() else (f"{name}/" if name != "." else "")
