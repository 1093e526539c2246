"""A document's title: metadata when it is a real title, else the largest type near the top
of the first PDF page, else the caller falls back to the file name."""

from __future__ import annotations

import math
import re
import statistics
import unicodedata
from dataclasses import dataclass
from typing import Any

__all__ = ["first_line_title", "meaningful_title", "pdf_heading"]

_MAX_TITLE = 300
_FILE_NAME = re.compile(
    r"\.(docx?|pdf|tex|dvi|txt|rtf|ps|eps|indd|qxd|odt|pages|md|html?)$", re.IGNORECASE
)
_PLACEHOLDER = re.compile(
    r"^(microsoft (word|powerpoint) - |untitled|title|document\d*$|slide \d+|no title|"
    r"powerpoint presentation|pdf|none|unknown|\s*$)",
    re.IGNORECASE,
)
# Lines printed large on a first page that are labels, not the title.
_NOT_A_TITLE = re.compile(
    r"^(arxiv:|https?://|www\.|doi:|\S+@\S+$)|^(research|review|original|short|technical)?\s*"
    r"(article|paper|communication|report|note)s?$|open access",
    re.IGNORECASE,
)

_TOP_FRACTION = 0.33  # where a title may start, as a share of the page height from the top
_MIN_SCALE = 1.15  # how much larger than the body text a title is printed
_SAME_SIZE = 0.08  # lines of one title differ in height by less than this share


def meaningful_title(title: str | None) -> str | None:
    """`title` cleaned up, or None when it is empty, a placeholder or a file name."""
    if not title:
        return None
    title = " ".join(unicodedata.normalize("NFKC", title).split())
    if sum(c.isalpha() for c in title) < 4 or _PLACEHOLDER.match(title) or _FILE_NAME.search(title):
        return None
    return title[:_MAX_TITLE]


def first_line_title(text: str) -> str | None:
    """The first line of a plain text, when it is short and reads like a heading."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    first = lines[0].strip("#=*_ ").strip()
    if len(first) > 120 or sum(c.isalpha() for c in first) < 2 or first[-1] in ",;":
        return None
    return first


@dataclass(slots=True)
class _Line:
    text: str
    height: float
    top: float  # distance of the line's top from the page top, as a share of the page height
    upright: bool


def pdf_heading(page: Any) -> str | None:
    """The title printed on a pdfium page: its largest upright text near the top."""
    lines, body_height = _lines_of(page)
    if not lines or body_height <= 0:
        return None
    candidates = [
        i
        for i, line in enumerate(lines)
        if line.upright
        and line.top <= _TOP_FRACTION
        and line.height >= _MIN_SCALE * body_height
        and sum(c.isalpha() for c in line.text) >= 4
        and not _NOT_A_TITLE.search(line.text)
    ]
    if not candidates:
        return None
    best = max(candidates, key=lambda i: (lines[i].height, -i))
    first = last = best

    def same_title(i: int) -> bool:
        line = lines[i]
        return (
            line.upright
            and abs(line.height - lines[best].height) <= _SAME_SIZE * lines[best].height
            and not _NOT_A_TITLE.search(line.text)
        )

    while first > 0 and same_title(first - 1):
        first -= 1
    while last + 1 < len(lines) and same_title(last + 1):
        last += 1
    title = " ".join(line.text for line in lines[first : last + 1])
    title = re.sub(r"(\w)\ufffe\s*(\w)", r"\1\2", title)
    return meaningful_title(title.replace("\ufffe", "-"))


def _is_upright(angle: float) -> bool:
    """pdfium gives the angle in radians, 0 to 2 pi, or -1 when it does not know."""
    return angle < 0 or min(angle, 2 * math.pi - angle) < 0.01


def _lines_of(page: Any) -> tuple[list[_Line], float]:
    """Text lines of a pdfium page in stream order with their type size, and the body size."""
    import pypdfium2.raw as pdfium_c

    page_height = float(page.get_height()) or 1.0
    textpage = page.get_textpage()
    try:
        rect = pdfium_c.FS_RECTF()
        lines: list[_Line] = []
        chars: list[str] = []
        heights: list[float] = []
        tops: list[float] = []
        upright = True
        all_heights: list[float] = []
        for index in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage.raw, index)
            char = chr(code) if 0 < code < 0x110000 else ""
            if char in ("\r", "\n"):
                if chars and heights:
                    text = " ".join("".join(chars).split())
                    lines.append(_Line(text, max(heights), 1 - max(tops) / page_height, upright))
                chars, heights, tops, upright = [], [], [], True
                continue
            chars.append(char)
            if char.strip() and pdfium_c.FPDFText_GetLooseCharBox(textpage.raw, index, rect):
                heights.append(rect.top - rect.bottom)
                tops.append(rect.top)
                all_heights.append(rect.top - rect.bottom)
                if not _is_upright(pdfium_c.FPDFText_GetCharAngle(textpage.raw, index)):
                    upright = False
        if chars and heights:
            text = " ".join("".join(chars).split())
            lines.append(_Line(text, max(heights), 1 - max(tops) / page_height, upright))
    finally:
        textpage.close()
    body = statistics.median(all_heights) if all_heights else 0.0
    return lines, body
