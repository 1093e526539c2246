"""HTML to a one-page document with the standard library's tokenizer: visible text only,
block elements on their own lines, the <title> (or first <h1>) as the title."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

from shared.documents import Page, ParsedDocument

from .cleanup import normalize_whitespace
from .decode import bom_encoding, decode_text
from .errors import EmptyFileError
from .title import meaningful_title

__all__ = ["parse_html"]

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([-\w.:]+)""", re.IGNORECASE)

_HIDDEN = frozenset({"script", "style", "noscript", "template", "svg", "math", "head", "iframe"})
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
        "caption",
    ]
)
_CELLS = frozenset({"td", "th"})
_VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.h1_parts: list[str] = []
        self._hidden_depth = 0
        self._in_title = False
        self._in_h1 = False
        self._h1_done = False
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _HIDDEN and tag not in _VOID:
            self._hidden_depth += 1
        if tag == "h1" and not self._h1_done:
            self._in_h1 = True
        if tag == "pre":
            self._pre_depth += 1
        self._break_for(tag)
        if tag == "img" and not self._hidden_depth:
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _HIDDEN and self._hidden_depth:
            self._hidden_depth -= 1
        if tag == "h1" and self._in_h1:
            self._in_h1 = False
            self._h1_done = True
        if tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        self._break_for(tag)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title_parts.append(data)
            return
        if self._hidden_depth:
            return
        if self._in_h1:
            self.h1_parts.append(data)
        # Source line breaks are layout only, except inside <pre>.
        self.parts.append(data if self._pre_depth else _collapse(data))

    def _break_for(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n")
        elif tag in _CELLS:
            self.parts.append(" ")


def _collapse(data: str) -> str:
    """Runs of whitespace to one space, keeping one at either end where the source had it."""
    words = " ".join(data.split())
    if not words:
        return " " if data else ""
    head = " " if data[:1].isspace() else ""
    tail = " " if data[-1:].isspace() else ""
    return f"{head}{words}{tail}"


def parse_html(data: bytes, *, fallback_title: str) -> ParsedDocument:
    collector = _TextCollector()
    collector.feed(_decode_html(data))
    collector.close()
    text = normalize_whitespace(unicodedata.normalize("NFC", "".join(collector.parts)))
    if not text:
        raise EmptyFileError()
    title = (
        meaningful_title("".join(collector.title_parts))
        or meaningful_title("".join(collector.h1_parts))
        or fallback_title
    )
    return ParsedDocument(title=title, format="html", pages=[Page(number=1, text=text)])


def _decode_html(data: bytes) -> str:
    """A BOM, then a <meta charset> in the first 4 KiB, then the plain-text guess."""
    if bom_encoding(data) is None and (declared := _META_CHARSET.search(data[:4096])):
        name = declared.group(1).decode("ascii", "replace")
        try:
            return data.decode(name, errors="replace")
        except LookupError:
            pass  # an unknown charset name: guess instead
    return decode_text(data)
