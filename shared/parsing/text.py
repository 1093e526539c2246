"""Plain text and Markdown files to a one-page document."""

from __future__ import annotations

import re
import unicodedata

from shared.documents import Page, ParsedDocument

from .cleanup import normalize_whitespace
from .decode import decode_text
from .errors import EmptyFileError
from .title import first_line_title, meaningful_title

__all__ = ["parse_markdown", "parse_text"]

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(---|\.\.\.)[ \t]*(\n|\Z)", re.DOTALL)
_FRONT_MATTER_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE | re.IGNORECASE)
_ATX_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$", re.MULTILINE)
_SETEXT_HEADING = re.compile(r"^(\S[^\n]*)\n=+[ \t]*$", re.MULTILINE)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\n]*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\n]*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# HTML that Markdown files embed (badges, centred logos), by tag name so code like
# `List<String>` stays.
_HTML_TAG = re.compile(
    r"</?(?:a|b|i|p|br|hr|em|div|img|span|strong|sup|sub|center|details|summary|picture|source|"
    r"table|thead|tbody|tr|td|th|ul|ol|li|h[1-6])\b[^>\n]*>",
    re.IGNORECASE,
)
_REFERENCE_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", re.MULTILINE)


def _decoded(data: bytes) -> str:
    text = normalize_whitespace(unicodedata.normalize("NFC", decode_text(data)))
    if not text:
        raise EmptyFileError()
    return text


def parse_text(data: bytes, *, fallback_title: str) -> ParsedDocument:
    text = _decoded(data)
    title = first_line_title(text) or fallback_title
    return ParsedDocument(title=title, format="text", pages=[Page(number=1, text=text)])


def parse_markdown(data: bytes, *, fallback_title: str) -> ParsedDocument:
    """Markdown as readable text: links and images keep their words, markup goes."""
    source = _decoded(data)
    metadata_title = None
    if front := _FRONT_MATTER.match(source):
        if found := _FRONT_MATTER_TITLE.search(front.group(1)):
            metadata_title = meaningful_title(found.group(1).strip("'\""))
        source = source[front.end() :]
    title = metadata_title or _first_heading(source) or fallback_title
    text = _HTML_TAG.sub(" ", _HTML_COMMENT.sub("", source))
    text = _REFERENCE_DEFINITION.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _ATX_HEADING.sub(r"\2", text)
    text = normalize_whitespace(text)
    if not text:
        raise EmptyFileError()
    return ParsedDocument(title=title, format="markdown", pages=[Page(number=1, text=text)])


def _first_heading(source: str) -> str | None:
    headings = [m for m in (_ATX_HEADING.search(source), _SETEXT_HEADING.search(source)) if m]
    if not headings:
        return None
    first = min(headings, key=lambda m: m.start())
    text = first.group(2) if first.re is _ATX_HEADING else first.group(1)
    return meaningful_title(text.strip("*_` "))
