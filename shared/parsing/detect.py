"""Which parser a file needs, judged by its bytes; the extension only tells markdown from text.

A file named `.pdf` whose bytes are not a PDF is refused with what it does hold, so a saved
error page or a truncated download reads as such instead of being indexed as a paper.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .decode import bom_encoding, guess_encoding
from .errors import EmptyFileError, UnsupportedFormatError

__all__ = ["FORMATS", "detect_format"]

FORMATS = ("pdf", "html", "markdown", "text", "jsonl")

_SNIFF_BYTES = 64 * 1024
_MAX_JSON_LINE = 16 * 1024 * 1024
_MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd"}
_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson"}

# Formats we recognise but do not read, by their magic bytes.
_BINARY_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (.docx, .pptx, .xlsx, .epub, .zip)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Microsoft Office file (.doc, .xls, .ppt)"),
    (b"{\\rtf", "an RTF document"),
    (b"%!PS", "a PostScript file"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"BZh", "a bzip2 archive"),
    (b"\xfd7zXZ\x00", "an xz archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"\x7fELF", "an executable (ELF)"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"PAR1", "a Parquet file"),
)

_HTML_START = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*<(!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL
)
_HTML_TAGS = re.compile(rb"<(head|body|title|meta|p|div|h1|h2)\b[^>]*>", re.IGNORECASE)
_PDF_BODY = re.compile(rb"\d+\s+\d+\s+obj\b|\bendobj\b|\bxref\b|/Type\s*/Page", re.DOTALL)
_MARKDOWN_SIGNALS = (
    re.compile(r"^#{1,6} \S", re.MULTILINE),  # ATX heading
    re.compile(r"^(```|~~~)", re.MULTILINE),  # fenced code
    re.compile(r"\[[^\]\n]+\]\([^)\s]+\)"),  # [link](url)
    re.compile(r"^\s{0,3}([-*+]|\d+\.) \S", re.MULTILINE),  # list item
    re.compile(r"^\S.*\n(=+|-+)\s*$", re.MULTILINE),  # setext heading
    re.compile(r"(\*\*|__)\S[^\n]*?\S\1"),  # **bold**
)


def detect_format(path: Path | str) -> str:
    """One of FORMATS for the file at `path`, or raise EmptyFileError / UnsupportedFormatError."""
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(_SNIFF_BYTES)
    if not head:
        raise EmptyFileError()
    named_pdf = path.suffix.lower() == ".pdf"
    # The PDF spec lets a header follow up to 1 KiB of junk; readers accept that too.
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if named_pdf and _PDF_BODY.search(head):
        raise UnsupportedFormatError(
            "named .pdf and holds PDF objects, but has no %PDF- header (truncated or damaged?)"
        )
    for magic, what in _BINARY_MAGIC:
        if head.startswith(magic):
            raise UnsupportedFormatError(_seen(what, named_pdf=named_pdf))
    text = _sniff_text(head)
    if text is None:
        raise UnsupportedFormatError(
            _seen(f"binary data (starts with {head[:8].hex(' ')})", named_pdf=named_pdf)
        )
    if not text.strip():
        raise EmptyFileError()
    kind = _text_kind(path, head, text)
    if named_pdf:
        names = {"html": "HTML (a web page?)", "jsonl": "JSON lines"}
        raise UnsupportedFormatError(_seen(names.get(kind, "plain text"), named_pdf=True))
    return kind


def _text_kind(path: Path, head: bytes, text: str) -> str:
    suffix = path.suffix.lower()
    raw = head.lstrip(b"\xef\xbb\xbf")
    if _HTML_START.match(raw):
        return "html"
    if suffix in _MARKDOWN_SUFFIXES:  # Markdown may embed HTML (<p align="center">, <div>)
        return "markdown"
    starts_with_tag = raw.lstrip().startswith(b"<")
    if suffix in _HTML_SUFFIXES or (starts_with_tag and len(_HTML_TAGS.findall(raw[:4096])) >= 2):
        return "html"
    if text.lstrip().startswith("{") and (
        suffix in _JSONL_SUFFIXES or _first_line_is_json_object(path)
    ):
        return "jsonl"  # a named .jsonl with a broken first line: iter_jsonl says which line
    return "markdown" if _looks_like_markdown(text) else "text"


def _seen(what: str, *, named_pdf: bool) -> str:
    return f"named .pdf but holds {what}, not a PDF" if named_pdf else what


def _sniff_text(head: bytes) -> str | None:
    """`head` decoded, or None when it is binary: NUL bytes or many control characters."""
    encoding = bom_encoding(head)
    if encoding is None and b"\x00" in head:
        return None
    text = _utf8_prefix(head) if encoding is None else None
    if text is None:
        try:
            text = head.decode(encoding or guess_encoding(head), errors="replace")
        except LookupError:
            return None
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    replaced = text.count("\ufffd")
    # A cut in the middle of a multi-byte character at the end of `head` is not a sign of junk.
    if controls + max(replaced - 1, 0) > 0.05 * max(len(text), 1):
        return None
    return text


def _utf8_prefix(head: bytes) -> str | None:
    """`head` as UTF-8, allowing it to end inside a multi-byte character; None if not UTF-8."""
    for cut in range(4):
        try:
            return head[: len(head) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return None


def _first_line_is_json_object(path: Path) -> bool:
    with path.open("rb") as file:
        while raw_line := file.readline(_MAX_JSON_LINE + 1):
            if len(raw_line) > _MAX_JSON_LINE:
                return False
            line = raw_line.strip().lstrip(b"\xef\xbb\xbf")
            if not line:
                continue
            try:
                return isinstance(json.loads(line), dict)
            except ValueError:
                return False
    return False


def _looks_like_markdown(text: str) -> bool:
    return sum(1 for signal in _MARKDOWN_SIGNALS if signal.search(text)) >= 2
