"""One file to one `ParsedDocument`: limits first, then the parser its content calls for."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from shared.documents import ParsedDocument

from .detect import detect_format
from .errors import EmptyFileError, FileTooLargeError, UnsupportedFormatError
from .html import parse_html
from .pdf import parse_pdf
from .text import parse_markdown, parse_text

__all__ = ["parse_file"]


def parse_file(
    path: Path | str,
    *,
    passwords: Sequence[str] = (),
    max_pages: int,
    max_bytes: int,
) -> ParsedDocument:
    """Parse a PDF, HTML, Markdown or plain-text file; raise a ParseError saying why not.

    `passwords` are tried in turn on an encrypted PDF. JSONL corpora hold many documents
    and go through `iter_jsonl` instead. A missing or unreadable file raises OSError.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise EmptyFileError()
    if size > max_bytes:
        raise FileTooLargeError(size_bytes=size, max_bytes=max_bytes)
    kind = detect_format(path)
    if kind == "pdf":
        return parse_pdf(path, passwords=passwords, max_pages=max_pages)
    if kind == "jsonl":
        raise UnsupportedFormatError("JSON lines: a corpus of records, ingest it with iter_jsonl")
    data = path.read_bytes()
    if kind == "html":
        return parse_html(data, fallback_title=path.stem)
    if kind == "markdown":
        return parse_markdown(data, fallback_title=path.stem)
    return parse_text(data, fallback_title=path.stem)
